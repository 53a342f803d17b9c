// The result view (#result): the four scores, the suggestions, the sentence character by character,
// the pitch chart, and the therapist's review beside them.
import { api } from "./api.js";
import { attemptPath, fillPair, playCharacter, referencePath } from "./audio.js";
import { renderCharacters } from "./characters.js";
import { $, svgEl } from "./dom.js";
import { score, scoreLine, t } from "./i18n.js";
import { state } from "./state.js";

let scrolled = false; // the page scrolls to a result once, not again when it is redrawn

// The next result shown scrolls into view (a new attempt, or one opened from the history).
export function scrollToNextResult() {
  scrolled = false;
}

// The one place a result is rendered (live, from the history, or again in another language).
export function renderResult(r) {
  $("result").hidden = false;
  // Issue #26: an attempt that does not count says so, and why, above its scores.
  $("not-counted").hidden = r.counted !== false;
  $("not-counted").textContent = r.counted === false ? `${t("not_counted")}: ${t("nc_" + r.not_counted_reason)}` : "";
  $("score-overall").textContent = score(r.overall_score);
  $("score-pronunciation").textContent = score(r.pronunciation_accuracy);
  $("score-fluency").textContent = score(r.fluency_score);
  $("score-rhythm").textContent = score(r.rhythm_score);
  $("suggestions").textContent = r.suggestions || t("none");
  const areas = $("areas");
  areas.replaceChildren();
  for (const a of r.improvement_areas && r.improvement_areas.length ? r.improvement_areas : [t("none")]) {
    const li = document.createElement("li");
    li.textContent = a;
    areas.appendChild(li);
  }
  // Issue #26: the attempt and its reference, side by side (one plays at a time).
  fillPair($("result-audio"), r.practice_record_id, r.sentence_id);
  renderResultCharacters(r, r.review_marks || new Set());
  // the therapist's review beside the engine's scores (below); its marks go into the grid
  renderReviewBeside(r);
  const da = r.detailed_analysis || {};
  drawPitch($("pitch-chart"), da.pitch_analysis || {}, da.deviations || []);
  $("pitch-facts").textContent = pitchFacts(da.pitch_analysis || {});
  if (!scrolled) { $("result").scrollIntoView({ block: "start", behavior: "smooth" }); scrolled = true; }
}

export function pitchFacts(pa) {
  return pa.measurable === false || pa.correlation === undefined || pa.correlation === null ? t("pitch_none")
    : t("pitch_facts", { corr: Number(pa.correlation).toFixed(2), dir: `${Math.round(100 * Number(pa.direction_agreement || 0))}%` });
}

// The recordings of a result: the attempt (its record) and the reference (its sentence).
export function resultPaths(r) {
  return {
    attempt: r.practice_record_id ? attemptPath(r.practice_record_id) : null,
    reference: r.sentence_id ? referencePath(r.sentence_id) : null,
  };
}

// Issues #9 and #22: the sentence with each character's verdict, the extra syllables and the
// completeness (characters.js); issue #26: the therapist's marks in the same grid, and a tap plays
// the character in the reference and in the attempt.
function renderResultCharacters(r, marks) {
  const da = r.detailed_analysis || {};
  const paths = resultPaths(r);
  const playable = Boolean(paths.attempt || paths.reference);
  renderCharacters($("characters"), da.characters || [], state.lang, {
    insertions: da.insertions || [],
    completeness: r.completeness_score ?? da.completeness_score ?? null,
    // another sentence was recorded: no verdict per character, and its completeness is no score
    unjudged: wrongSentence(r) ? t("not_judged") : "",
    marks,
    onChar: playable ? (c, cell) => playCharacter(paths, c, cell) : null,
    tapHint: playable ? t("tap_to_play") : "",
  });
}

export const wrongSentence = (r) => Boolean(r) && r.counted === false && r.not_counted_reason === "wrong_sentence";

// The pitch chart of a result into `svg` (the result's, or the therapist's review's).
export function drawPitch(svg, pa, deviations) {
  // Drawn in the container's own pixels, so labels stay readable on a phone.
  const W = Math.round(Math.max(300, Math.min(900, svg.parentElement.clientWidth || 720)));
  const H = W < 500 ? 230 : 290, L = 40, R = 12, TOP = 36, B = 40;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.vbChart = { pa, deviations };
  svg.replaceChildren(svgEl("title", {}, t("pitch_chart")));
  const time = pa.time || [];
  const ref = pa.reference || [];
  const att = pa.attempt || [];
  const values = [...ref, ...att].filter((v) => v !== null && v !== undefined);
  if (!time.length || !values.length) {
    svg.appendChild(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, t("pitch_none")));
    return;
  }
  const t0 = Math.min(time[0], ...deviations.map((d) => d.ref_start ?? d.start));
  const t1 = Math.max(time[time.length - 1], ...deviations.map((d) => d.ref_end ?? d.end));
  let lo = Math.floor(Math.min(...values)) - 1;
  let hi = Math.ceil(Math.max(...values)) + 1;
  if (hi - lo < 4) { lo -= 2; hi += 2; }
  const x = (s) => L + ((s - t0) / Math.max(1e-6, t1 - t0)) * (W - L - R);
  const y = (v) => TOP + (1 - (v - lo) / (hi - lo)) * (H - TOP - B);

  // grid and axes
  const stStep = hi - lo > 16 ? 4 : 2;
  for (let v = Math.ceil(lo / stStep) * stStep; v <= hi; v += stStep) {
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.appendChild(svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, (v > 0 ? "+" : "") + v));
  }
  const span = t1 - t0;
  const tStep = span > 8 ? 2 : span > 3 ? 1 : 0.5;
  for (let s = Math.ceil(t0 / tStep) * tStep; s <= t1 + 1e-9; s += tStep) {
    svg.appendChild(svgEl("line", { x1: x(s), x2: x(s), y1: TOP, y2: H - B, class: "grid" }));
    svg.appendChild(svgEl("text", { x: x(s), y: H - B + 16, "text-anchor": "middle", class: "axis" }, s.toFixed(tStep < 1 ? 1 : 0)));
  }
  svg.appendChild(svgEl("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "axis" }, t("time_axis")));
  svg.appendChild(svgEl("text", { x: 4, y: 12, class: "axis" }, t("st_axis")));

  // deviating spans, on the reference's time axis; their labels in two rows above the plot, never
  // over each other (a label with no room is left to the span's tooltip) nor past the right edge
  const rows = [-Infinity, -Infinity]; // where each row's last label ends
  const labelWidth = (s) => [...s].reduce((w, ch) => w + (/[\u2E80-\uFFFF]/.test(ch) ? 11 : 6.2), 0);
  for (const d of deviations) {
    const a = d.ref_start ?? d.start, b = d.ref_end ?? d.end;
    if (a === undefined || b === undefined || a === null || b === null) continue;
    const label = t("dev_" + d.kind);
    const rect = svgEl("rect", { x: x(a), y: TOP, width: Math.max(3, x(b) - x(a)), height: H - TOP - B, class: "dev" });
    rect.appendChild(svgEl("title", {}, `${label} ${a.toFixed(2)}–${b.toFixed(2)} s`));
    svg.appendChild(rect);
    const w = labelWidth(label);
    const lx = Math.max(L, Math.min(x(a) + 2, W - R - w));
    const row = rows.findIndex((end) => lx >= end + 4);
    if (row < 0) continue;
    rows[row] = lx + w;
    svg.appendChild(svgEl("text", { x: lx, y: TOP - 6 - row * 13, class: "dev-label" }, label));
  }

  // the two contours; a null is unvoiced, so the line breaks there
  const path = (series) => {
    let dstr = "", pen = false;
    series.forEach((v, i) => {
      if (v === null || v === undefined || time[i] === undefined) { pen = false; return; }
      dstr += `${pen ? "L" : "M"}${x(time[i]).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    });
    return dstr.trim();
  };
  svg.appendChild(svgEl("path", { d: path(ref), class: "ref" }));
  svg.appendChild(svgEl("path", { d: path(att), class: "att" }));
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
    // the marked characters are in the grid above, not after the comment (issue #26)
    $("result-review-comment").textContent = rv.comment || "";
    const marks = new Set((rv.characters || []).filter((c) => c.deviating).map((c) => c.index));
    if (state.result !== r) return; // another result is on screen now
    r.review_marks = marks;
    renderResultCharacters(r, marks);
  } catch (_) { box.hidden = true; }
}

export function initResult() {
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const svg of document.querySelectorAll("svg.pitch-chart")) {
        if (svg.vbChart && svg.getBoundingClientRect().width > 0) drawPitch(svg, svg.vbChart.pa, svg.vbChart.deviations);
      }
    }, 150);
  });
}
