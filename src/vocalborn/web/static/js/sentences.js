// The therapist's sentences (issue #26): record the reference in the browser (MediaRecorder, a file
// as the fallback), and the sentences the therapist wrote: edit the text, share or not, delete.
import { api } from "./api.js";
import { forgetAudio, playPath, referencePath } from "./audio.js";
import { $, el, showError, showNotice } from "./dom.js";
import { t, when } from "./i18n.js";
import { loadSentences } from "./practice.js";
import { recordingSupported, startRecorder } from "./recorder.js";
import { state } from "./state.js";

const ref = { blob: null, name: null, recorder: null };

// --- a new sentence: its reference recorded here or chosen as a file -----------------------------
async function toggleReference() {
  showError("");
  if (ref.recorder) { ref.recorder.stop(); return; }
  try {
    ref.recorder = await startRecorder({
      tick: (s) => { $("ref-record-time").textContent = `● ${s.toFixed(0)} s`; },
      done: (blob, name, secs) => {
        ref.recorder = null;
        $("ref-record").classList.remove("recording");
        $("ref-record").textContent = t("ref_record_again");
        $("ref-record-time").textContent = t("recorded", { n: secs.toFixed(1) });
        setReference(blob, name);
      },
    });
    $("ref-record").classList.add("recording");
    $("ref-record").textContent = t("record_stop");
  } catch (e) { showError(t("mic_denied", { msg: e.message })); }
}

function setReference(blob, name) {
  ref.blob = blob;
  ref.name = name;
  const audio = $("ref-preview");
  if (audio.src) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(blob);
  audio.hidden = false;
}

function onReferenceFile() {
  const file = $("reference-file").files[0];
  if (file) { setReference(file, file.name); $("ref-record-time").textContent = t("chosen", { name: file.name }); }
}

async function createSentence(ev) {
  ev.preventDefault();
  showError("");
  if (!ref.blob) { showError(t("need_reference")); return; }
  const form = new FormData();
  form.append("text", $("sentence-text").value.trim());
  form.append("reference_audio", ref.blob, ref.name);
  form.append("shared", $("sentence-shared").checked ? "true" : "false");
  try {
    const s = await api("POST", "/api/v1/practice/sentences", { form });
    $("sentence-form").reset();
    ref.blob = null;
    $("ref-preview").hidden = true;
    $("ref-record-time").textContent = "";
    $("ref-record").textContent = t("ref_record");
    await loadSentences(s.sentence_id);
    renderMySentences();
    showNotice(t("created_sentence"));
  } catch (e) { showError(e.message); }
}

// --- the therapist's own sentences: edit, share, delete -------------------------------------------
const editing = new Set(); // sentence ids whose text is being edited

export function renderMySentences() {
  const me = state.me;
  const card = $("my-sentences");
  if (!me || me.role !== "therapist") { card.hidden = true; return; }
  const mine = (state.sentences || []).filter((s) => s.created_by === me.user_id);
  card.hidden = false;
  $("no-my-sentences").hidden = mine.length > 0;
  $("my-sentence-list").replaceChildren(...mine.map(sentenceRow));
}

function sentenceRow(s) {
  const id = s.sentence_id;
  if (editing.has(id)) {
    const input = el("input", { type: "text", maxlength: "2000", value: s.text, "aria-label": t("sentence_text"), class: "edit-text" });
    return el("li", { class: "item sentence-item", "data-sentence": id },
      input,
      el("button", { type: "button", class: "secondary small save-sentence", onclick: () => saveText(s, input.value) }, t("save")),
      el("button", { type: "button", class: "link", onclick: () => { editing.delete(id); renderMySentences(); } }, t("cancel")));
  }
  const shared = el("input", { type: "checkbox", class: "share-sentence", onchange: (ev) => share(s, ev.target.checked) });
  shared.checked = Boolean(s.shared);
  return el("li", { class: "item sentence-item", "data-sentence": id },
    el("span", { class: "item-main" }, s.text),
    el("span", { class: "hint" }, `${when(s.created_at)} · ${Number(s.reference_duration_seconds).toFixed(1)} s`),
    el("label", { class: "inline" }, shared, el("span", {}, t("shared_short"))),
    el("button", { type: "button", class: "secondary small", onclick: () => playPath(referencePath(id)).catch((e) => showError(e.message)) }, `▶ ${t("legend_reference")}`),
    el("button", { type: "button", class: "link edit-sentence", onclick: () => { editing.add(id); renderMySentences(); } }, t("edit")),
    el("button", { type: "button", class: "link delete-sentence", onclick: () => removeSentence(s) }, t("delete")));
}

async function saveText(s, text) {
  showError("");
  try {
    await api("PATCH", `/api/v1/practice/sentences/${s.sentence_id}`, { json: { text: text.trim() } });
    editing.delete(s.sentence_id);
    await loadSentences($("sentence").value);
    renderMySentences();
    showNotice(t("sentence_saved"));
  } catch (e) { showError(e.message); }
}

async function share(s, on) {
  showError("");
  try {
    await api("PATCH", `/api/v1/practice/sentences/${s.sentence_id}`, { json: { shared: on } });
    await loadSentences($("sentence").value);
    renderMySentences();
  } catch (e) { showError(e.message); renderMySentences(); }
}

async function removeSentence(s) {
  if (!window.confirm(t("sentence_delete_confirm", { text: s.text }))) return;
  showError("");
  try {
    await api("DELETE", `/api/v1/practice/sentences/${s.sentence_id}`);
    forgetAudio(referencePath(s.sentence_id));
    await loadSentences();
    renderMySentences();
    showNotice(t("sentence_deleted"));
  } catch (e) { showError(e.message); }
}

export function initSentences() {
  $("sentence-form").addEventListener("submit", createSentence);
  $("reference-file").addEventListener("change", onReferenceFile);
  document.addEventListener("vb:sentences", renderMySentences); // practice.js loaded the list
  if (recordingSupported()) $("ref-record").addEventListener("click", toggleReference);
  else { $("ref-record").disabled = true; $("ref-record-unsupported").hidden = false; }
}
