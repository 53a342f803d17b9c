// The therapist's home (#therapist-home): invitation codes, the linked learners (flagged ones
// marked), a learner's timeline and practice set, side-by-side playback and the review form.
import { api } from "./api.js";
import { attemptPath, loadInto, playButtons, playCharacter, referencePath } from "./audio.js";
import { errorType, renderCharacters } from "./characters.js";
import { $, el, showError, showNotice } from "./dom.js";
import { itemLine, score, scoreLine, t, when } from "./i18n.js";
import { sentenceLabel } from "./practice.js";
import { loadDrills, renderDrills } from "./drills.js";
import { initInvite, renderInvite } from "./invite.js";
import { reportControls } from "./report.js";
import { drawPitch, pitchFacts, wrongSentence } from "./result.js";
import { state } from "./state.js";

const home = { learners: [], learner: null, learnerAssigned: [], timeline: [], review: null };

export async function enterTherapistHome() {
  await loadLearners();
}

export function renderTherapistHome() {
  renderInvite();
  renderLearners();
  renderTimeline();
  renderDrills();
  renderReviewHeader();
  if (home.review && home.review.chars) { renderMarks(); renderReviewResult(); }
}

// --- therapist: learners (the invitation: invite.js) ------------------------------------------
async function loadLearners() {
  home.learners = await api("GET", "/api/v1/therapists/me/learners");
  renderLearners();
}
function renderLearners() {
  $("learners").replaceChildren(...home.learners.map((l) => el("li", { class: "item" + (l.flagged ? " flagged" : ""), "data-learner": l.user_id },
    el("span", { class: "item-main" }, `${l.name} · ${l.email}`),
    el("span", { class: "hint" }, t("learner_row", { last: when(l.last_practice_at), week: l.attempts_this_week, mean: score(l.mean_overall_last_10) })
      + (l.dose_met_percent === null || l.dose_met_percent === undefined ? "" : " · " + t("dose", { dose: Math.round(l.dose_met_percent) }))),
    el("span", { class: l.flagged ? "flag" : "badge ok" }, l.flagged ? flagNames(l).join(", ") : t("ok_flag")),
    el("button", { type: "button", class: "secondary small", onclick: () => openLearner(l.user_id) }, t("timeline")))));
  $("no-learners").hidden = home.learners.length > 0;
}
// The reasons a learner is flagged: the older ones, then issue #26's flags (attempts that count)
// they do not already say ("never practised" says "no practice"; "declining" says "scores falling").
const SAID_BY = { no_practice: ["never_practised", "inactive"], falling_scores: ["declining"], below_dose: [] };
function flagNames(l) {
  const reasons = l.flag_reasons || [];
  const extra = (l.flags || []).filter((f) => !(SAID_BY[f] || []).some((r) => reasons.includes(r)));
  return [...reasons, ...extra].map((r) => t("flag_" + r));
}
async function openLearner(id, rethrow) {
  showError("");
  home.learner = home.learners.find((l) => l.user_id === id) || { user_id: id, name: "" };
  try {
    const [page, assigned] = await Promise.all([
      api("GET", `/api/v1/tasks/analysis?${new URLSearchParams({ user_id: id, limit: "50" })}`),
      api("GET", `/api/v1/learners/${id}/assignments`),
    ]);
    home.timeline = page.items;
    home.learnerAssigned = assigned;
    $("timeline-card").hidden = false;
    renderTimeline();
    loadDrills(id, () => openLearner(id)); // suggested minimal pairs, after the timeline
    $("timeline-card").scrollIntoView({ block: "start", behavior: "smooth" });
  } catch (e) { if (rethrow) throw e; showError(e.message); }
}
// A link to a learner's analysis (#task=ID: the bell, the mail): that learner's timeline and the
// review of that attempt.
export async function openTherapistTask(taskId) {
  showError("");
  try {
    const status = await api("GET", `/api/v1/tasks/analysis/${taskId}/status`);
    const record = await api("GET", `/api/v1/practice/records/${status.practice_record_id}`);
    if (!home.learners.some((l) => l.user_id === record.user_id)) await loadLearners();
    await openLearner(record.user_id, true);
    let item = home.timeline.find((i) => i.task_id === taskId);
    if (!item) { // older than the timeline's first page: that sentence's attempts
      const q = new URLSearchParams({ user_id: record.user_id, sentence_id: record.sentence_id, limit: "100" });
      item = (await api("GET", `/api/v1/tasks/analysis?${q}`)).items.find((i) => i.task_id === taskId);
    }
    if (item) await openReview(item);
  } catch (e) { showError(e.message); }
}
function renderTimeline() {
  if (!home.learner) return;
  $("timeline-name").textContent = home.learner.name;
  $("timeline-report").replaceChildren(reportControls(home.learner.user_id));
  const sel = $("assign-sentence");
  const keep = sel.value;
  sel.replaceChildren(...(state.sentences || []).map((s) => el("option", { value: s.sentence_id }, sentenceLabel(s))));
  if (keep) sel.value = keep;
  $("timeline-assigned").replaceChildren(...(home.learnerAssigned || []).map((a) => el("li", { class: "item" },
    el("span", { class: "item-main" }, `★ ${a.sentence_text}`),
    el("span", { class: "hint" }, t("best_last", { best: score(a.best_overall), last: score(a.last_overall), n: a.attempts })),
    el("button", { type: "button", class: "link", onclick: () => unassign(a.sentence_id) }, t("remove")))));
  $("timeline").replaceChildren(...home.timeline.map((i) => el("li", { class: "item", "data-task": i.task_id },
    el("span", { class: "item-main" }, `${when(i.created_at)} · ${i.sentence_text}`),
    el("span", { class: "hint" }, i.status === "success" ? itemLine(i) : t("st_" + i.status)),
    i.counted === false ? el("span", { class: "flag not-counted", title: t("nc_" + i.not_counted_reason) }, `${t("not_counted")}: ${t("nc_" + i.not_counted_reason)}`) : null,
    i.review ? el("span", { class: "badge" }, `${t("reviewed")} ${score(i.review.overall_score)}`) : null,
    playButtons(i.practice_record_id, i.sentence_id, t("attempt_short")),
    el("button", { type: "button", class: "secondary small review-open", onclick: () => openReview(i) }, t("review")))));
}
async function assignSentence() {
  showError("");
  try {
    // the weekly goal is optional: a field left empty is not sent (the API says why a value is refused)
    const body = { sentence_id: $("assign-sentence").value };
    for (const [id, key] of [["goal-attempts", "target_attempts_per_week"], ["goal-minutes", "target_minutes_per_week"], ["goal-days", "days_per_week"]]) {
      if ($(id).value !== "") body[key] = Number($(id).value);
    }
    if ($("goal-due").value) body.due_on = $("goal-due").value;
    await api("POST", `/api/v1/learners/${home.learner.user_id}/assignments`, { json: body });
    for (const id of ["goal-attempts", "goal-minutes", "goal-days", "goal-due"]) $(id).value = "";
    await openLearner(home.learner.user_id);
  } catch (e) { showError(e.message); }
}
async function unassign(sentenceId) {
  try {
    await api("DELETE", `/api/v1/learners/${home.learner.user_id}/assignments/${sentenceId}`);
    await openLearner(home.learner.user_id);
  } catch (e) { showError(e.message); }
}

// --- therapist: side-by-side playback and the review form -------------------------------------
const loadAudio = (audioId, path) => loadInto($(audioId), path);
async function openReview(item) {
  showError("");
  home.review = { item, marks: new Set() };
  $("review-card").hidden = false;
  renderReviewHeader();
  try {
    const [, , reviews, result] = await Promise.all([
      loadAudio("review-ref-audio", referencePath(item.sentence_id)),
      loadAudio("review-att-audio", attemptPath(item.practice_record_id)),
      api("GET", `/api/v1/tasks/analysis/${item.task_id}/review`),
      item.status === "success" ? api("GET", `/api/v1/tasks/analysis/${item.task_id}/result`) : Promise.resolve(null),
    ]);
    home.review.chars = reviewCharacters(item.sentence_text, result);
    home.review.result = result;
    const mine = reviews.reviews.find((r) => r.therapist_id === state.me.user_id);
    $("rv-overall").value = mine && mine.overall_score !== null ? mine.overall_score : "";
    $("rv-pronunciation").value = mine && mine.pronunciation_accuracy !== null ? mine.pronunciation_accuracy : "";
    $("rv-fluency").value = mine && mine.fluency_score !== null ? mine.fluency_score : "";
    $("rv-rhythm").value = mine && mine.rhythm_score !== null ? mine.rhythm_score : "";
    $("rv-comment").value = mine && mine.comment ? mine.comment : "";
    for (const c of (mine && mine.characters) || []) if (c.deviating) home.review.marks.add(c.index);
    renderMarks();
    renderReviewResult();
    $("review-card").scrollIntoView({ block: "start", behavior: "smooth" });
  } catch (e) { showError(e.message); }
}
// The characters to mark: the engine's own list (its indexes) when the result has one, without the
// characters it never judges (punctuation), otherwise the letters of the sentence text (their
// positions in it). The characters whose verdict is not "none" are outlined (issue #22).
function reviewCharacters(text, result) {
  const engine = result && result.detailed_analysis && Array.isArray(result.detailed_analysis.characters)
    ? result.detailed_analysis.characters.filter((c) => c && typeof c.char === "string") : [];
  if (engine.length) {
    return engine.map((c, i) => ({ c, i, kind: errorType(c) })).filter(({ kind }) => kind !== null).map(({ c, i, kind }) => ({
      index: Number.isInteger(c.index) ? c.index : i, char: c.char, engineDeviating: kind !== "none",
    }));
  }
  return [...text].map((ch, i) => ({ index: i, char: ch, engineDeviating: false })).filter((c) => /[\p{L}\p{N}]/u.test(c.char));
}
function renderReviewHeader() {
  if (!home.review) return;
  const item = home.review.item;
  $("review-sentence").textContent = `${when(item.created_at)} · ${item.sentence_text}`;
  $("review-engine").textContent = item.status === "success" ? scoreLine(item) : t("st_" + item.status);
  $("review-saved").textContent = home.review.savedVersion ? t("review_saved", { v: home.review.savedVersion }) : "";
}
// Issue #26: the whole result as the learner sees it (chart, suggestions), and the characters in the
// learner's grid, where a tap marks one (or, with "tap to listen", plays it in both recordings).
function renderReviewResult() {
  const r = home.review && home.review.result;
  const item = home.review && home.review.item;
  $("review-result").hidden = !r;
  $("review-not-counted").hidden = !(item && item.counted === false);
  $("review-not-counted").textContent = item && item.counted === false ? `${t("not_counted")}: ${t("nc_" + item.not_counted_reason)}` : "";
  if (!r) return;
  const da = r.detailed_analysis || {};
  drawPitch($("review-pitch"), da.pitch_analysis || {}, da.deviations || []);
  $("review-pitch-facts").textContent = pitchFacts(da.pitch_analysis || {});
  $("review-suggestions").textContent = r.suggestions || t("none");
  $("review-areas").replaceChildren(...(r.improvement_areas && r.improvement_areas.length ? r.improvement_areas : [t("none")]).map((a) => el("li", {}, a)));
}
function renderMarks() {
  const marks = home.review.marks;
  const r = home.review.result;
  const engine = r && r.detailed_analysis && Array.isArray(r.detailed_analysis.characters) ? r.detailed_analysis.characters : [];
  const grid = engine.some((c) => c && errorType(c) !== null);
  $("rv-tap-mode").hidden = !grid;
  $("rv-chars").hidden = grid;
  $("rv-grid").hidden = !grid;
  if (grid) {
    const item = home.review.item;
    const paths = { attempt: attemptPath(item.practice_record_id), reference: referencePath(item.sentence_id) };
    renderCharacters($("rv-grid"), engine, state.lang, {
      insertions: r.detailed_analysis.insertions || [],
      completeness: r.completeness_score ?? null,
      unjudged: wrongSentence(r) || wrongSentence(item) ? t("not_judged") : "",
      marks,
      pressed: true,
      tapHint: t("tap_marks"),
      onChar: (c, cell, index) => {
        if ($("rv-listen").checked) { playCharacter(paths, c, cell); return; }
        if (marks.has(index)) marks.delete(index); else marks.add(index);
        renderMarks();
        const again = $("rv-grid").querySelector(`[data-index="${index}"]`);
        if (again) again.focus();
      },
    });
    $("rv-chars").replaceChildren();
    return;
  }
  $("rv-chars").replaceChildren(...home.review.chars.map((c) => el("button", {
    type: "button", class: "char" + (marks.has(c.index) ? " marked" : "") + (c.engineDeviating ? " engine-dev" : ""),
    "data-index": String(c.index), "aria-pressed": String(marks.has(c.index)),
    onclick: () => { if (marks.has(c.index)) marks.delete(c.index); else marks.add(c.index); renderMarks(); },
  }, c.char)));
}
async function saveReview(ev) {
  ev.preventDefault();
  showError("");
  const item = home.review.item;
  const num = (id) => ($(id).value === "" ? null : Number($(id).value));
  const body = {
    overall_score: num("rv-overall"), pronunciation_accuracy: num("rv-pronunciation"),
    fluency_score: num("rv-fluency"), rhythm_score: num("rv-rhythm"),
    comment: $("rv-comment").value.trim() || null,
    characters: home.review.chars.map((c) => ({ index: c.index, char: c.char, deviating: home.review.marks.has(c.index) })),
  };
  try {
    const saved = await api("PUT", `/api/v1/tasks/analysis/${item.task_id}/review`, { json: body });
    home.review.savedVersion = saved.version;
    renderReviewHeader();
    showNotice(t("review_saved", { v: saved.version }));
    await openLearner(home.learner.user_id);
  } catch (e) { showError(e.message); }
}

export function initTherapist() {
  initInvite();
  $("assign").addEventListener("click", assignSentence);
  $("play-ref").addEventListener("click", () => $("review-ref-audio").play().catch((e) => showError(e.message)));
  $("play-att").addEventListener("click", () => $("review-att-audio").play().catch((e) => showError(e.message)));
  $("review-form").addEventListener("submit", saveReview);
}
