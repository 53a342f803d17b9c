// Suggested drills (issue #26) in the therapist's timeline: minimal pairs from the learner's
// still-deviating characters (GET /api/v1/learners/{id}/drills). An item the therapist already has
// as a sentence is assigned with one click; a new one needs the therapist's voice: one click records
// it (a second stops), and it is sent with the text to POST .../drills, which makes it a private
// sentence and assigns it. A file is the fallback where the browser cannot record.
import { api } from "./api.js";
import { $, el, showError, showNotice } from "./dom.js";
import { t } from "./i18n.js";
import { recordingSupported, startRecorder } from "./recorder.js";
import { state } from "./state.js";

const drills = { userId: null, data: null, lang: null, all: false, recording: null, onAssigned: null };
const FIRST = 4; // items shown before "show all"

export async function loadDrills(userId, onAssigned) {
  if (userId !== drills.userId) { drills.data = null; drills.all = false; }
  drills.userId = userId;
  drills.onAssigned = onAssigned;
  drills.loading = true;
  renderDrills();
  const lang = state.lang;
  try {
    drills.data = await api("GET", `/api/v1/learners/${userId}/drills`); // "why" in the page's language
  } catch (e) { showError(e.message); }
  drills.lang = lang; // also after a failure: not asked again until the language changes
  drills.loading = false;
  renderDrills();
}

export function renderDrills() {
  const box = $("drills");
  const d = drills.data;
  if (!d) { box.replaceChildren(); return; }
  // in another language now: fetched again (its "why" is the server's text), the old list meanwhile
  if (drills.lang !== state.lang && !drills.recording && !drills.loading) loadDrills(drills.userId, drills.onAssigned);
  const shown = drills.all ? d.items : d.items.slice(0, FIRST);
  box.replaceChildren(
    el("h3", {}, t("drills_title")),
    d.items.length ? el("p", { class: "hint" }, t("drills_hint")) : el("p", { class: "hint" }, t("drills_none")),
    el("ul", { class: "list" }, ...shown.map(drillRow)),
    // replaceChildren writes a null as the text "null": nothing at all when every item is shown
    ...(d.items.length > shown.length
      ? [el("button", { type: "button", class: "link drills-all", onclick: () => { drills.all = true; renderDrills(); } }, t("drills_all", { n: d.items.length }))]
      : []));
}

function drillRow(item) {
  const busy = drills.recording && drills.recording.text === item.text;
  let action;
  if (item.existing_sentence_id) {
    action = el("button", { type: "button", class: "secondary small assign-drill", onclick: () => assignExisting(item) }, t("assign_drill"));
  } else if (recordingSupported()) {
    action = el("button", { type: "button", class: "record small record-drill" + (busy ? " recording" : ""), onclick: () => recordDrill(item) },
      busy ? t("drill_stop_send") : t("drill_record"));
  } else {
    const file = el("input", { type: "file", accept: "audio/*", class: "drill-file", "aria-label": t("reference_file") });
    file.addEventListener("change", () => { if (file.files[0]) send(item, file.files[0], file.files[0].name); });
    action = file;
  }
  return el("li", { class: "item drill", "data-text": item.text },
    el("span", { class: "item-main", "data-content": "" }, `${item.text} · ${item.pinyin}`),
    el("span", { class: "hint" }, item.why),
    action);
}

async function assignExisting(item) {
  showError("");
  try {
    await api("POST", `/api/v1/learners/${drills.userId}/assignments`, { json: { sentence_id: item.existing_sentence_id } });
    showNotice(t("drill_assigned", { text: item.text }));
    if (drills.onAssigned) await drills.onAssigned();
  } catch (e) { showError(e.message); }
}

async function recordDrill(item) {
  showError("");
  if (drills.recording) {
    const was = drills.recording;
    was.recorder.stop(); // done() sends it when it is this item's
    return;
  }
  try {
    const recorder = await startRecorder({
      tick: () => {},
      done: (blob, name) => {
        const was = drills.recording;
        drills.recording = null;
        renderDrills();
        if (was && was.text === item.text) send(item, blob, name);
      },
    });
    drills.recording = { text: item.text, recorder };
    renderDrills();
  } catch (e) { showError(t("mic_denied", { msg: e.message })); }
}

async function send(item, blob, name) {
  const form = new FormData();
  form.append("text", item.text);
  form.append("reference_audio", blob, name);
  try {
    await api("POST", `/api/v1/learners/${drills.userId}/drills`, { form });
    showNotice(t("drill_assigned", { text: item.text }));
    if (drills.onAssigned) await drills.onAssigned();
  } catch (e) { showError(e.message); }
}
