// The result view (#result): the four scores, the suggestions, the sentence character by character,
// the pitch chart, and the therapist's review beside them.
import { api } from "./api.js";
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
  const da = r.detailed_analysis || {};
  // Issues #9 and #22: the sentence with each character's verdict, the extra syllables and the
  // completeness (characters.js).
  renderCharacters($("characters"), da.characters || [], state.lang, {
    insertions: da.insertions || [],
    completeness: r.completeness_score ?? da.completeness_score ?? null,
  });
  // the therapist's review beside the engine's scores (below)
  renderReviewBeside(r);
  drawPitch(da.pitch_analysis || {}, da.deviations || []);
  const pa = da.pitch_analysis || {};
  $("pitch-facts").textContent = pa.measurable === false || pa.correlation === undefined ? t("pitch_none")
    : t("pitch_facts", { corr: Number(pa.correlation).toFixed(2), dir: `${Math.round(100 * Number(pa.direction_agreement || 0))}%` });
  if (!scrolled) { $("result").scrollIntoView({ block: "start", behavior: "smooth" }); scrolled = true; }
}

function drawPitch(pa, deviations) {
  const svg = $("pitch-chart");
  // Drawn in the container's own pixels, so labels stay readable on a phone.
  const W = Math.round(Math.max(300, Math.min(900, svg.parentElement.clientWidth || 720)));
  const H = W < 500 ? 220 : 280, L = 40, R = 10, TOP = 22, B = 40;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  state.chart = { pa, deviations };
  svg.replaceChildren(svgEl("title", { id: "chart-title" }, t("pitch_chart")));
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
  svg.appendChild(svgEl("text", { x: 4, y: TOP - 8, class: "axis" }, t("st_axis")));

  // deviating spans, on the reference's time axis
  for (const d of deviations) {
    const a = d.ref_start ?? d.start, b = d.ref_end ?? d.end;
    if (a === undefined || b === undefined) continue;
    const rect = svgEl("rect", { x: x(a), y: TOP, width: Math.max(3, x(b) - x(a)), height: H - TOP - B, class: "dev" });
    rect.appendChild(svgEl("title", {}, `${t("dev_" + d.kind)} ${a.toFixed(2)}–${b.toFixed(2)} s`));
    svg.appendChild(rect);
    svg.appendChild(svgEl("text", { x: x(a) + 2, y: TOP - 6, class: "dev-label" }, t("dev_" + d.kind)));
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
    const marked = (rv.characters || []).filter((c) => c.deviating).map((c) => c.char).join(" ");
    $("result-review-comment").textContent = [rv.comment || "", marked ? `✎ ${marked}` : ""].filter(Boolean).join("  ");
  } catch (_) { box.hidden = true; }
}

export function initResult() {
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (state.chart && !$("result").hidden) drawPitch(state.chart.pa, state.chart.deviations); }, 150);
  });
}
