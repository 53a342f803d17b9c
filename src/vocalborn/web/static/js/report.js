// The clinical report (issue #26): a learner's attempts, minutes, dose, score trends and errors over
// a date range, as PDF or CSV (GET /api/v1/learners/{id}/report), for the linked therapist and the
// learner. The download needs the page's token, so it is fetched and saved from a blob: URL.
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./state.js";

async function download(userId, format, from, to) {
  showError("");
  const q = new URLSearchParams({ format, lang: state.lang === "en" ? "en" : "zh-TW" });
  if (from.value) q.set("from", from.value);
  if (to.value) q.set("to", to.value);
  try {
    const blob = await api("GET", `/api/v1/learners/${userId}/report?${q}`, { blob: true });
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: `vocalborn-report-${to.value || new Date().toISOString().slice(0, 10)}.${format}` });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (e) { showError(e.message); }
}

// The report's controls for one learner: from, to (both optional: the server's default is the
// last 12 weeks), PDF, CSV.
export function reportControls(userId) {
  const from = el("input", { type: "date", class: "report-from", "aria-label": t("report_from") });
  const to = el("input", { type: "date", class: "report-to", "aria-label": t("report_to") });
  return el("div", { class: "row report" },
    el("span", { class: "hint" }, t("report")),
    el("label", { class: "inline" }, el("span", {}, t("report_from")), from),
    el("label", { class: "inline" }, el("span", {}, t("report_to")), to),
    el("button", { type: "button", class: "secondary small report-pdf", onclick: () => download(userId, "pdf", from, to) }, "PDF"),
    el("button", { type: "button", class: "secondary small report-csv", onclick: () => download(userId, "csv", from, to) }, "CSV"));
}
