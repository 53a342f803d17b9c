// VocalBorn homes: the learner's (therapist link, practice set, progress, history) and the
// therapist's (invite, learners, a learner's timeline, side-by-side playback, review).
// Loaded after app.js and uses its globals: state, api, t, $, showError, showNotice, renderResult.
"use strict";

Object.assign(T["zh-TW"], {
  my_therapist: "我的治療師", invite_code_placeholder: "治療師給你的邀請碼", accept_invite: "接受邀請",
  unlink: "解除連結", linked_with: "已連結：{name}（{email}）", not_linked: "還沒有連結治療師。輸入治療師給你的邀請碼：",
  assigned: "指定練習", no_assigned: "治療師還沒有指定句子。", assigned_mark: "指定",
  best_last: "最佳 {best} · 最近 {last} · 練習 {n} 次", practise: "練習這句",
  progress_title: "進步情形", progress_none: "完成一次分析後，這裡會畫出每次的分數。",
  progress_facts: "{n} 次練習：總分從 {first} 到最近 {last}（每次 {slope}）。",
  improved_chars: "進步的字：{chars}", history: "練習紀錄", no_history: "還沒有練習紀錄。", more: "更多",
  reviewed: "已評閱", open: "查看", my_learners: "我的學習者", make_invite: "產生邀請碼",
  invite_valid: "給學習者這個邀請碼，{when} 前有效，只能用一次。",
  no_learners: "還沒有連結的學習者：產生邀請碼給學習者。",
  flag_rule: "標記：從未練習、7 天沒有練習，或最近 3 次的總分比之前低 10 分以上。",
  learner_row: "最近練習 {last} · 本週 {week} 次 · 最近 10 次平均 {mean}",
  flag_never_practised: "從未練習", flag_inactive: "7 天沒練習", flag_declining: "分數下滑", ok_flag: "正常",
  timeline: "練習時間軸", assign: "指定這個句子", remove: "移除", review: "評閱", review_title: "評閱",
  attempt: "學習者的錄音", play: "播放", engine_scores: "系統評分", mark_chars: "點選聽起來不對的字：",
  comment: "評語", save_review: "儲存評閱", review_saved: "已儲存評閱（第 {v} 版）。",
  therapist_review: "治療師評閱", review_by: "{name} 的評分：{scores}", never: "從未",
  unlinked: "已解除連結。", linked_now: "已連結 {name}。",
});
Object.assign(T.en, {
  my_therapist: "My therapist", invite_code_placeholder: "invitation code from your therapist",
  accept_invite: "Accept invitation", unlink: "Unlink", linked_with: "Linked with {name} ({email})",
  not_linked: "No therapist linked yet. Enter the code your therapist gave you:",
  assigned: "Assigned practice", no_assigned: "Your therapist has not assigned any sentence yet.",
  assigned_mark: "assigned", best_last: "best {best} · last {last} · {n} attempts", practise: "Practise this",
  progress_title: "Progress", progress_none: "After your first analysis, your scores are drawn here.",
  progress_facts: "{n} attempts: overall from {first} to {last} lately ({slope} per attempt).",
  improved_chars: "Characters that improved: {chars}", history: "History", no_history: "No analyses yet.",
  more: "More", reviewed: "reviewed", open: "Open", my_learners: "My learners", make_invite: "Create an invitation code",
  invite_valid: "Give this code to a learner; it works once, until {when}.",
  no_learners: "No learners linked yet: create an invitation code for a learner.",
  flag_rule: "Flagged: never practised, no practice for 7 days, or the last 3 overall scores 10+ points below the earlier ones.",
  learner_row: "last practice {last} · {week} this week · mean of last 10: {mean}",
  flag_never_practised: "never practised", flag_inactive: "inactive for 7 days", flag_declining: "scores falling",
  ok_flag: "on track", timeline: "Timeline", assign: "Assign this sentence", remove: "Remove", review: "Review",
  review_title: "Review", attempt: "The learner's attempt", play: "Play", engine_scores: "Engine scores",
  mark_chars: "Tap the characters that sound wrong:", comment: "Comment", save_review: "Save review",
  review_saved: "Review saved (version {v}).", therapist_review: "Therapist's review",
  review_by: "{name}'s scores: {scores}", never: "never", unlinked: "Unlinked.", linked_now: "Linked with {name}.",
});

const SCORE_KEYS = [
  ["overall_score", "overall", "#2a6f97"],
  ["pronunciation_accuracy", "pronunciation", "#e07a1f"],
  ["fluency_score", "fluency", "#2f8f5b"],
  ["rhythm_score", "rhythm", "#8e44ad"],
];
const home = { therapist: null, assigned: [], history: [], historyCursor: null, progress: null, learners: [], learner: null, timeline: [], review: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
const when = (iso) => (iso ? new Date(iso).toLocaleString(state.lang === "en" ? "en" : "zh-TW", { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" }) : t("never"));
const sc = (v) => (v === null || v === undefined ? "–" : String(Math.round(Number(v))));
const scoreLine = (o) => SCORE_KEYS.map(([k, label]) => `${t(label)} ${sc(o[k])}`).join(" · ");

async function enterHome() {
  const role = state.me.role;
  $("learner-home").hidden = role !== "learner";
  $("learner-more").hidden = role !== "learner";
  $("therapist-home").hidden = role !== "therapist";
  $("timeline-card").hidden = true;
  $("review-card").hidden = true;
  if (role === "learner") await Promise.all([loadMyTherapist(), loadAssigned(), loadHistory(), loadProgress()]);
  if (role === "therapist") await loadLearners();
}

function renderHome() {
  if (!state.me) return;
  if (state.me.role === "learner") { renderMyTherapist(); renderAssigned(); renderHistory(); renderProgress(); }
  if (state.me.role === "therapist") { renderLearners(); renderTimeline(); renderReviewHeader(); }
  if (state.sentences) {
    const current = $("sentence").value;
    loadSentences(current).catch(() => {});
  }
}

async function afterResult() {
  if (state.me && state.me.role === "learner") {
    await Promise.all([loadAssigned(), loadHistory(), loadProgress()]).catch((e) => showError(e.message));
  }
}

// --- learner: the link ------------------------------------------------------------------------
async function loadMyTherapist() {
  home.therapist = (await api("GET", "/api/v1/links/therapist")).therapist;
  renderMyTherapist();
}
function renderMyTherapist() {
  const th = home.therapist;
  $("my-therapist").textContent = th ? t("linked_with", { name: th.name, email: th.email }) : t("not_linked");
  $("invite-form").hidden = Boolean(th);
  $("unlink-me").hidden = !th;
}
async function acceptInvite(ev) {
  ev.preventDefault();
  showError("");
  try {
    const link = await api("POST", "/api/v1/links/accept", { json: { code: $("invite-code").value.trim() } });
    $("invite-code").value = "";
    home.therapist = link.therapist;
    renderMyTherapist();
    showNotice(t("linked_now", { name: link.therapist.name }));
    await loadAssigned();
  } catch (e) { showError(e.message); }
}
async function unlinkMe() {
  showError("");
  try {
    await api("DELETE", `/api/v1/links/${state.me.user_id}`);
    home.therapist = null;
    renderMyTherapist();
    showNotice(t("unlinked"));
  } catch (e) { showError(e.message); }
}

// --- learner: practice set --------------------------------------------------------------------
async function loadAssigned() {
  home.assigned = await api("GET", `/api/v1/learners/${state.me.user_id}/assignments`);
  state.assignedIds = home.assigned.map((a) => a.sentence_id);
  renderAssigned();
}
function renderAssigned() {
  const ul = $("assigned");
  ul.replaceChildren(...home.assigned.map((a) => el("li", { class: "item", "data-sentence": a.sentence_id },
    el("span", { class: "item-main" }, a.sentence_text),
    el("span", { class: "hint" }, t("best_last", { best: sc(a.best_overall), last: sc(a.last_overall), n: a.attempts })),
    el("button", { type: "button", class: "secondary small", onclick: () => practise(a.sentence_id) }, t("practise")))));
  $("no-assigned").hidden = home.assigned.length > 0;
}
function practise(sentenceId) {
  $("sentence").value = sentenceId;
  $("sentence").dispatchEvent(new Event("change"));
  $("practice").scrollIntoView({ block: "start", behavior: "smooth" });
}

// --- learner: history -------------------------------------------------------------------------
async function loadHistory(more) {
  const q = new URLSearchParams({ limit: "10" });
  if (more && home.historyCursor) q.set("cursor", home.historyCursor);
  const page = await api("GET", `/api/v1/tasks/analysis?${q}`);
  home.history = more ? [...home.history, ...page.items] : page.items;
  home.historyCursor = page.next_cursor;
  renderHistory();
}
function renderHistory() {
  $("history").replaceChildren(...home.history.map((i) => el("li", { class: "item", "data-task": i.task_id },
    el("span", { class: "item-main" }, `${when(i.created_at)} · ${i.sentence_text}`),
    el("span", { class: "hint" }, i.status === "success" ? scoreLine(i) : t("st_" + i.status)),
    i.review ? el("span", { class: "badge" }, `${t("reviewed")} ${sc(i.review.overall_score)}`) : null,
    i.status === "success" ? el("button", { type: "button", class: "secondary small", onclick: () => openHistoryItem(i.task_id) }, t("open")) : null)));
  $("no-history").hidden = home.history.length > 0;
  $("history-more").hidden = !home.historyCursor;
}
async function openHistoryItem(taskId) {
  showError("");
  try {
    const r = await api("GET", `/api/v1/tasks/analysis/${taskId}/result`);
    r.task_id = taskId;
    state.result = r;
    drawPitch.scrolled = false;
    renderResult(r);
  } catch (e) { showError(e.message); }
}

// The therapist's review beside the engine's scores, under the result (called by renderResult).
async function renderReviewBeside(r) {
  const box = $("result-review");
  if (!r.task_id) { box.hidden = true; return; }
  try {
    const data = await api("GET", `/api/v1/tasks/analysis/${r.task_id}/review`);
    const rv = data.reviews[0];
    box.hidden = !rv;
    if (!rv) return;
    $("result-review-scores").textContent = t("review_by", { name: rv.therapist_name || "", scores: scoreLine(rv) });
    const marked = (rv.characters || []).filter((c) => c.deviating).map((c) => c.char).join(" ");
    $("result-review-comment").textContent = [rv.comment || "", marked ? `✎ ${marked}` : ""].filter(Boolean).join("  ");
  } catch (_) { box.hidden = true; }
}

// --- learner: progress chart ------------------------------------------------------------------
async function loadProgress() {
  home.progress = await api("GET", `/api/v1/learners/${state.me.user_id}/progress`);
  const sel = $("progress-sentence");
  const keep = sel.value;
  sel.replaceChildren(...home.progress.sentences.map((s) => el("option", { value: s.sentence_id }, `${s.sentence_text} (${s.attempts})`)));
  if (keep && home.progress.sentences.some((s) => s.sentence_id === keep)) sel.value = keep;
  renderProgress();
}
function renderProgress() {
  const svg = $("progress-chart");
  const p = home.progress;
  const s = p && p.sentences.find((x) => x.sentence_id === $("progress-sentence").value);
  const W = Math.round(Math.max(300, Math.min(900, svg.parentElement.clientWidth || 720)));
  const H = W < 500 ? 200 : 240, L = 34, R = 12, TOP = 14, B = 30;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren(svgEl("title", {}, t("progress_title")));
  $("progress-legend").replaceChildren(...SCORE_KEYS.map(([key, label]) =>
    el("li", {}, el("span", { class: `swatch s-${key}` }), t(label))));
  if (!s) {
    svg.appendChild(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, t("progress_none")));
    $("progress-facts").textContent = "";
    return;
  }
  const n = s.points.length;
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i / (n - 1)) * (W - L - R));
  const y = (v) => TOP + (1 - v / 100) * (H - TOP - B);
  for (const v of [0, 25, 50, 75, 100]) {
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.appendChild(svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, String(v)));
  }
  s.points.forEach((pt, i) => svg.appendChild(svgEl("text", { x: x(i), y: H - 10, "text-anchor": "middle", class: "axis" }, String(i + 1))));
  for (const [key, , color] of SCORE_KEYS) {
    const pts = s.points.map((pt, i) => [i, pt[key]]).filter(([, v]) => v !== null && v !== undefined);
    if (pts.length > 1) svg.appendChild(svgEl("path", { d: pts.map(([i, v], j) => `${j ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" "), class: `series ${key}`, stroke: color }));
    for (const [i, v] of pts) {
      const c = svgEl("circle", { cx: x(i), cy: y(v), r: key === "overall_score" ? 5 : 3.5, class: `pt ${key}`, fill: color });
      c.appendChild(svgEl("title", {}, `${when(s.points[i].at)} ${Math.round(v)}`));
      svg.appendChild(c);
    }
  }
  const tr = s.trend.overall_score;
  let facts = t("progress_facts", { n, first: sc(tr.first), last: sc(tr.last_n_mean), slope: tr.slope_per_attempt === null ? "–" : (tr.slope_per_attempt >= 0 ? "+" : "") + tr.slope_per_attempt.toFixed(1) });
  if (s.improved_characters.length) facts += " " + t("improved_chars", { chars: s.improved_characters.join(" ") });
  $("progress-facts").textContent = facts;
}

// --- therapist: invitations and learners ------------------------------------------------------
async function makeInvite() {
  showError("");
  try {
    const inv = await api("POST", "/api/v1/links/invitations", { json: { expires_in_hours: 72 } });
    $("invite-code-shown").textContent = inv.code;
    $("invite-code-shown").hidden = false;
    $("invite-expires").textContent = t("invite_valid", { when: when(inv.expires_at) });
  } catch (e) { showError(e.message); }
}
async function loadLearners() {
  home.learners = await api("GET", "/api/v1/therapists/me/learners");
  renderLearners();
}
function renderLearners() {
  $("learners").replaceChildren(...home.learners.map((l) => el("li", { class: "item" + (l.flagged ? " flagged" : ""), "data-learner": l.user_id },
    el("span", { class: "item-main" }, `${l.name} · ${l.email}`),
    el("span", { class: "hint" }, t("learner_row", { last: when(l.last_practice_at), week: l.attempts_this_week, mean: sc(l.mean_overall_last_10) })),
    el("span", { class: l.flagged ? "flag" : "badge ok" }, l.flagged ? l.flag_reasons.map((r) => t("flag_" + r)).join(", ") : t("ok_flag")),
    el("button", { type: "button", class: "secondary small", onclick: () => openLearner(l.user_id) }, t("timeline")))));
  $("no-learners").hidden = home.learners.length > 0;
}
async function openLearner(id) {
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
    $("timeline-card").scrollIntoView({ block: "start", behavior: "smooth" });
  } catch (e) { showError(e.message); }
}
function renderTimeline() {
  if (!home.learner) return;
  $("timeline-name").textContent = home.learner.name;
  const sel = $("assign-sentence");
  const keep = sel.value;
  sel.replaceChildren(...(state.sentences || []).map((s) => el("option", { value: s.sentence_id }, sentenceLabel(s))));
  if (keep) sel.value = keep;
  $("timeline-assigned").replaceChildren(...(home.learnerAssigned || []).map((a) => el("li", { class: "item" },
    el("span", { class: "item-main" }, `★ ${a.sentence_text}`),
    el("span", { class: "hint" }, t("best_last", { best: sc(a.best_overall), last: sc(a.last_overall), n: a.attempts })),
    el("button", { type: "button", class: "link", onclick: () => unassign(a.sentence_id) }, t("remove")))));
  $("timeline").replaceChildren(...home.timeline.map((i) => el("li", { class: "item", "data-task": i.task_id },
    el("span", { class: "item-main" }, `${when(i.created_at)} · ${i.sentence_text}`),
    el("span", { class: "hint" }, i.status === "success" ? scoreLine(i) : t("st_" + i.status)),
    i.review ? el("span", { class: "badge" }, `${t("reviewed")} ${sc(i.review.overall_score)}`) : null,
    el("button", { type: "button", class: "secondary small review-open", onclick: () => openReview(i) }, t("review")))));
}
async function assignSentence() {
  showError("");
  try {
    await api("POST", `/api/v1/learners/${home.learner.user_id}/assignments`, { json: { sentence_id: $("assign-sentence").value } });
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
async function loadAudio(audioId, path) {
  const blob = await api("GET", path, { blob: true });
  const audio = $(audioId);
  if (audio.src) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(blob);
}
async function openReview(item) {
  showError("");
  home.review = { item, marks: new Set() };
  $("review-card").hidden = false;
  renderReviewHeader();
  try {
    const [, , reviews, result] = await Promise.all([
      loadAudio("review-ref-audio", `/api/v1/practice/sentences/${item.sentence_id}/audio`),
      loadAudio("review-att-audio", `/api/v1/practice/records/${item.practice_record_id}/audio`),
      api("GET", `/api/v1/tasks/analysis/${item.task_id}/review`),
      item.status === "success" ? api("GET", `/api/v1/tasks/analysis/${item.task_id}/result`) : Promise.resolve(null),
    ]);
    home.review.chars = reviewCharacters(item.sentence_text, result);
    const mine = reviews.reviews.find((r) => r.therapist_id === state.me.user_id);
    $("rv-overall").value = mine && mine.overall_score !== null ? mine.overall_score : "";
    $("rv-pronunciation").value = mine && mine.pronunciation_accuracy !== null ? mine.pronunciation_accuracy : "";
    $("rv-fluency").value = mine && mine.fluency_score !== null ? mine.fluency_score : "";
    $("rv-rhythm").value = mine && mine.rhythm_score !== null ? mine.rhythm_score : "";
    $("rv-comment").value = mine && mine.comment ? mine.comment : "";
    for (const c of (mine && mine.characters) || []) if (c.deviating) home.review.marks.add(c.index);
    renderMarks();
    $("review-card").scrollIntoView({ block: "start", behavior: "smooth" });
  } catch (e) { showError(e.message); }
}
// The characters to mark: the engine's own list (its indexes) when the result has one, otherwise
// the letters of the sentence text (their positions in it). The engine's deviating ones are outlined.
function reviewCharacters(text, result) {
  const engine = result && result.detailed_analysis && Array.isArray(result.detailed_analysis.characters)
    ? result.detailed_analysis.characters.filter((c) => c && typeof c.char === "string") : [];
  if (engine.length) {
    return engine.map((c, i) => ({
      index: Number.isInteger(c.index) ? c.index : i, char: c.char,
      engineDeviating: Boolean(c.deviating ?? c.deviates ?? c.is_deviating ?? c.flagged ?? (typeof c.status === "string" && c.status !== "ok")),
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
function renderMarks() {
  const marks = home.review.marks;
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

document.addEventListener("DOMContentLoaded", () => {
  $("invite-form").addEventListener("submit", acceptInvite);
  $("unlink-me").addEventListener("click", unlinkMe);
  $("history-more").addEventListener("click", () => loadHistory(true).catch((e) => showError(e.message)));
  $("progress-sentence").addEventListener("change", renderProgress);
  $("make-invite").addEventListener("click", makeInvite);
  $("assign").addEventListener("click", assignSentence);
  $("play-ref").addEventListener("click", () => $("review-ref-audio").play().catch((e) => showError(e.message)));
  $("play-att").addEventListener("click", () => $("review-att-audio").play().catch((e) => showError(e.message)));
  $("review-form").addEventListener("submit", saveReview);
  let timer = null;
  window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(() => { if (home.progress) renderProgress(); }, 150); });
});

window.enterHome = enterHome;
window.renderHome = renderHome;
window.afterResult = afterResult;
window.renderReviewBeside = renderReviewBeside;
