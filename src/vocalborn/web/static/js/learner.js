// The learner's home (#learner-home, #learner-more): the therapist link, the practice set, the
// history (a past result opens in the result view) and the progress chart.
import { api } from "./api.js";
import { playButtons } from "./audio.js";
import { $, el, showError, showNotice, svgEl } from "./dom.js";
import { SCORE_KEYS, itemLine, score, t, when } from "./i18n.js";
import { loadSentences } from "./practice.js";
import { reportControls } from "./report.js";
import { renderResult, scrollToNextResult } from "./result.js";
import { state } from "./state.js";

const home = { therapist: null, assigned: [], history: [], historyCursor: null, progress: null, week: null };

export async function enterLearnerHome() {
  $("my-report").replaceChildren(reportControls(state.me.user_id));
  await Promise.all([loadMyTherapist(), loadAssigned(), loadHistory(), loadProgress(), loadWeek()]);
}

export function renderLearnerHome() {
  renderMyTherapist();
  renderAssigned();
  renderHistory();
  renderProgress();
  renderWeek();
  $("my-report").replaceChildren(reportControls(state.me.user_id));
}

// After an analysis of the learner's succeeded: its history, progress and practice set changed.
async function afterResult() {
  if (state.me && state.me.role === "learner") {
    await Promise.all([loadAssigned(), loadHistory(), loadProgress(), loadWeek()]).catch((e) => showError(e.message));
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
  // An invitation link (?invite=CODE, issue #26) fills the code in; the learner accepts it.
  const invited = new URLSearchParams(location.search).get("invite");
  if (!th && invited && !$("invite-code").value) $("invite-code").value = invited;
}
async function acceptInvite(ev) {
  ev.preventDefault();
  showError("");
  try {
    const link = await api("POST", "/api/v1/links/accept", { json: { code: $("invite-code").value.trim() } });
    $("invite-code").value = "";
    if (new URLSearchParams(location.search).has("invite")) history.replaceState(null, "", location.pathname); // used up
    home.therapist = link.therapist;
    renderMyTherapist();
    showNotice(t("linked_now", { name: link.therapist.name }));
    // the therapist's sentences are the learner's now: the practice list and home show them at once
    await Promise.all([loadAssigned(), loadWeek()]);
    await loadSentences();
  } catch (e) { showError(e.message); }
}
async function unlinkMe() {
  showError("");
  try {
    await api("DELETE", `/api/v1/links/${state.me.user_id}`);
    home.therapist = null;
    renderMyTherapist();
    showNotice(t("unlinked"));
    await Promise.all([loadAssigned(), loadWeek()]);
    await loadSentences();
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
    el("span", { class: "hint" }, t("best_last", { best: score(a.best_overall), last: score(a.last_overall), n: a.attempts })),
    el("button", { type: "button", class: "secondary small", onclick: () => practise(a.sentence_id) }, t("practise")))));
  $("no-assigned").hidden = home.assigned.length > 0;
}
function practise(sentenceId) {
  $("sentence").value = sentenceId;
  $("sentence").dispatchEvent(new Event("change"));
  $("practice").scrollIntoView({ block: "start", behavior: "smooth" });
}

// --- learner: this week (issue #26): what is due today, streak, minutes -------------------------
async function loadWeek() {
  home.week = await api("GET", `/api/v1/learners/${state.me.user_id}/goals`);
  renderWeek();
}
function renderWeek() {
  const w = home.week;
  if (!w) return;
  let summary = [t("week_attempts", { n: w.attempts_this_week }), t("week_minutes", { n: w.minutes_this_week }),
    t("week_days", { n: w.days_practised_this_week }), t("week_streak", { n: w.streak_days })].join(" · ");
  if (w.dose_met_percent !== null) summary += " · " + t("week_dose", { dose: Math.round(w.dose_met_percent) });
  $("week-summary").textContent = summary;
  const goals = w.items.filter((i) => i.target_attempts_per_week !== null || i.target_minutes_per_week !== null || i.due_on);
  $("week-due").replaceChildren(...(goals.length ? goals.map(weekItem) : [el("li", { class: "hint" }, t("week_none"))]));
}
function weekItem(i) {
  const parts = [];
  if (i.target_attempts_per_week !== null) parts.push(t("goal_line", { done: i.attempts_this_week, target: i.target_attempts_per_week }));
  if (i.target_minutes_per_week !== null) parts.push(t("goal_minutes", { done: i.minutes_this_week, target: i.target_minutes_per_week }));
  if (i.due_on) parts.push(t("due_on", { date: new Date(i.due_on + "T00:00:00").toLocaleDateString(state.lang === "en" ? "en" : "zh-TW") }));
  const today = [];
  if (i.attempts_due_today) today.push(t("due_today_attempts", { n: i.attempts_due_today }));
  if (i.minutes_due_today) today.push(t("due_today_minutes", { n: i.minutes_due_today }));
  const badge = i.overdue ? el("span", { class: "flag" }, t("overdue"))
    : i.met ? el("span", { class: "badge ok" }, t("due_done"))
    : today.length ? el("span", { class: "badge" }, today.join(" · ")) : null;
  return el("li", { class: "item", "data-sentence": i.sentence_id },
    el("span", { class: "item-main" }, i.sentence_text),
    el("span", { class: "hint" }, parts.join(" · ")),
    badge,
    el("button", { type: "button", class: "secondary small", onclick: () => practise(i.sentence_id) }, t("practise")));
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
    el("span", { class: "hint" }, i.status === "success" ? itemLine(i) : t("st_" + i.status)),
    i.counted === false ? el("span", { class: "flag not-counted", title: t("nc_" + i.not_counted_reason) }, `${t("not_counted")}: ${t("nc_" + i.not_counted_reason)}`) : null,
    i.review ? el("span", { class: "badge" }, `${t("reviewed")} ${score(i.review.overall_score)}`) : null,
    playButtons(i.practice_record_id, i.sentence_id, t("play_mine")),
    i.status === "success" ? el("button", { type: "button", class: "secondary small open-result", onclick: () => openHistoryItem(i) }, t("open")) : null,
    ["success", "failure", "cancelled"].includes(i.status)
      ? el("button", { type: "button", class: "link delete-attempt", onclick: () => deleteAttempt(i) }, t("delete")) : null)));
  $("no-history").hidden = home.history.length > 0;
  $("history-more").hidden = !home.historyCursor;
}
// Issue #26: the learner deletes an attempt (its recording and result are erased).
async function deleteAttempt(item) {
  if (!window.confirm(t("delete_confirm"))) return;
  showError("");
  try {
    await api("DELETE", `/api/v1/practice/records/${item.practice_record_id}`);
    showNotice(t("deleted"));
    await Promise.all([loadAssigned(), loadHistory(), loadProgress(), loadWeek()]);
  } catch (e) { showError(e.message); }
}
// A link to one of the learner's analyses (#task=ID: the bell, the review mail): its result, with
// the therapist's review beside it.
export async function openLearnerTask(taskId) {
  showError("");
  try {
    let item = home.history.find((i) => i.task_id === taskId);
    if (!item) {
      const status = await api("GET", `/api/v1/tasks/analysis/${taskId}/status`);
      const record = await api("GET", `/api/v1/practice/records/${status.practice_record_id}`);
      item = { task_id: taskId, practice_record_id: status.practice_record_id, sentence_id: record.sentence_id };
    }
    await openHistoryItem(item, true);
  } catch (e) { showError(e.message); }
}
async function openHistoryItem(item, rethrow) {
  showError("");
  try {
    const r = await api("GET", `/api/v1/tasks/analysis/${item.task_id}/result`);
    r.task_id = item.task_id;
    r.practice_record_id = item.practice_record_id;
    r.sentence_id = item.sentence_id;
    state.result = r;
    scrollToNextResult();
    renderResult(r);
  } catch (e) { if (rethrow) throw e; showError(e.message); }
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
  // Issue #26: the x-axis is the date of each attempt, not its number (a week off shows as a gap).
  const times = s.points.map((pt) => Date.parse(pt.at));
  const DAY = 86400000;
  let t0 = Math.min(...times), t1 = Math.max(...times);
  if (t1 - t0 < DAY) { const mid = (t0 + t1) / 2; t0 = mid - DAY / 2; t1 = mid + DAY / 2; }
  const pad = (t1 - t0) * 0.04;
  t0 -= pad; t1 += pad;
  const xt = (ms) => L + ((ms - t0) / (t1 - t0)) * (W - L - R);
  const x = (i) => xt(times[i]);
  const y = (v) => TOP + (1 - v / 100) * (H - TOP - B);
  for (const v of [0, 25, 50, 75, 100]) {
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.appendChild(svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, String(v)));
  }
  const lang = state.lang === "en" ? "en" : "zh-TW";
  const first = new Date(t0); first.setHours(0, 0, 0, 0);
  const maxTicks = Math.max(2, Math.floor((W - L - R) / 64));
  const days = Math.ceil((t1 - first.getTime()) / DAY);
  const every = Math.max(1, Math.ceil(days / maxTicks));
  for (let d = new Date(first); d.getTime() <= t1; d.setDate(d.getDate() + every)) {
    const mid = d.getTime() + DAY / 2; // a day's label under its middle, where its attempts are
    if (mid < t0 || mid > t1) continue;
    if (d.getTime() >= t0) svg.appendChild(svgEl("line", { x1: xt(d.getTime()), x2: xt(d.getTime()), y1: TOP, y2: H - B, class: "grid day" }));
    svg.appendChild(svgEl("text", { x: xt(mid), y: H - 10, "text-anchor": "middle", class: "axis date" },
      d.toLocaleDateString(lang, { month: "numeric", day: "numeric" })));
  }
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
  let facts = t("progress_facts", { n, first: score(tr.first), last: score(tr.last_n_mean), slope: tr.slope_per_attempt === null ? "–" : (tr.slope_per_attempt >= 0 ? "+" : "") + tr.slope_per_attempt.toFixed(1) });
  if (s.improved_characters.length) facts += " " + t("improved_chars", { chars: s.improved_characters.join(" ") });
  $("progress-facts").textContent = facts;
}

export function initLearner() {
  $("invite-form").addEventListener("submit", acceptInvite);
  $("unlink-me").addEventListener("click", unlinkMe);
  $("history-more").addEventListener("click", () => loadHistory(true).catch((e) => showError(e.message)));
  $("progress-sentence").addEventListener("change", renderProgress);
  document.addEventListener("vb:analysed", afterResult); // progress.js showed a new result
  let timer = null;
  window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(() => { if (home.progress) renderProgress(); }, 150); });
}
