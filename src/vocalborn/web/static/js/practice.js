// The practice view (#practice): choose a sentence (therapists add them), record or choose the
// attempt, submit it; then progress.js watches the task.
import { api } from "./api.js";
import { $, showError, showNotice } from "./dom.js";
import { t } from "./i18n.js";
import { watch } from "./progress.js";
import { state } from "./state.js";

// --- sentences ---------------------------------------------------------------------------------
export async function loadSentences(selectId) {
  const list = await api("GET", "/api/v1/practice/sentences?limit=200");
  state.sentences = list;
  const sel = $("sentence");
  sel.replaceChildren();
  // assigned sentences first; identical texts told apart by when they were added
  const assigned = new Set(state.assignedIds || []);
  const ordered = [...list.filter((s) => assigned.has(s.sentence_id)), ...list.filter((s) => !assigned.has(s.sentence_id))];
  for (const s of ordered) {
    const opt = document.createElement("option");
    opt.value = s.sentence_id;
    opt.textContent = sentenceLabel(s, list) + (assigned.has(s.sentence_id) ? ` ★ ${t("assigned_mark")}` : "");
    sel.appendChild(opt);
  }
  if (selectId) sel.value = selectId;
  $("no-sentences").hidden = list.length > 0;
  $("play-reference").disabled = list.length === 0;
  $("reference-audio").hidden = true;
  updateSubmit();
}

// The text of a sentence, with the date and time it was added when another sentence reads the same.
export function sentenceLabel(s, list) {
  const twins = (list || state.sentences || []).filter((o) => o.text === s.text);
  if (twins.length < 2) return s.text;
  const when = new Date(s.created_at).toLocaleString(state.lang === "en" ? "en" : "zh-TW", {
    month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  return `${s.text} (${when} · ${s.sentence_id.slice(0, 4)})`;
}

async function playReference() {
  showError("");
  try {
    const blob = await api("GET", `/api/v1/practice/sentences/${$("sentence").value}/audio`, { blob: true });
    const audio = $("reference-audio");
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(blob);
    audio.hidden = false;
    await audio.play().catch(() => {});
  } catch (e) {
    showError(e.message);
  }
}

async function createSentence(ev) {
  ev.preventDefault();
  showError("");
  const file = $("reference-file").files[0];
  const form = new FormData();
  form.append("text", $("sentence-text").value.trim());
  form.append("reference_audio", file, file.name);
  form.append("shared", $("sentence-shared").checked ? "true" : "false");
  try {
    const s = await api("POST", "/api/v1/practice/sentences", { form });
    $("sentence-form").reset();
    await loadSentences(s.sentence_id);
    showNotice(t("created_sentence"));
  } catch (e) {
    showError(e.message);
  }
}

// --- the attempt: record or choose -----------------------------------------------------------------
export function setAttempt(blob, name) {
  state.attempt = { blob, name };
  const audio = $("attempt-audio");
  if (audio.src) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(blob);
  audio.hidden = false;
  updateSubmit();
}

export function updateSubmit() {
  $("submit").disabled = !(state.attempt && $("sentence").value) || Boolean(state.task && !state.task.done);
}

function recordingSupported() {
  return Boolean(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

function pickMime() {
  for (const [mime, ext] of [["audio/webm;codecs=opus", "webm"], ["audio/ogg;codecs=opus", "ogg"], ["audio/mp4", "m4a"], ["audio/webm", "webm"]]) {
    if (MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(mime)) return { mime, ext };
  }
  return { mime: "", ext: "webm" };
}

async function toggleRecording() {
  showError("");
  if (state.recorder) {
    state.recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    showError(t("mic_denied", { msg: e.message }));
    return;
  }
  const { mime, ext } = pickMime();
  const rec = new MediaRecorder(stream, mime ? { mimeType: mime } : undefined);
  const chunks = [];
  const started = Date.now();
  rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  rec.onstop = () => {
    clearInterval(state.recordTimer);
    stream.getTracks().forEach((tr) => tr.stop());
    state.recorder = null;
    $("record").classList.remove("recording");
    $("record").textContent = t("record_start");
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    $("record-time").textContent = t("recorded", { n: secs });
    setAttempt(new Blob(chunks, { type: rec.mimeType || mime || "audio/webm" }), `recording.${ext}`);
    $("attempt-name").textContent = "";
  };
  rec.start();
  state.recorder = rec;
  $("record").classList.add("recording");
  $("record").textContent = t("record_stop");
  state.recordTimer = setInterval(() => {
    $("record-time").textContent = `● ${((Date.now() - started) / 1000).toFixed(0)} s`;
  }, 250);
}

function onFileChosen() {
  const file = $("attempt-file").files[0];
  if (!file) return;
  setAttempt(file, file.name);
  state.attempt.chosen = true;
  $("attempt-name").textContent = t("chosen", { name: file.name });
}

// --- submit --------------------------------------------------------------------------------------
async function practiceSession() {
  const key = `vb.session.${state.me.user_id}`;
  let id = sessionStorage.getItem(key);
  if (!id) {
    const s = await api("POST", "/api/v1/practice/sessions", { json: { title: "web" } });
    id = s.practice_session_id;
    sessionStorage.setItem(key, id);
  }
  return id;
}

async function submitAttempt() {
  showError("");
  if (!$("sentence").value) return showError(t("need_sentence"));
  if (!state.attempt) return showError(t("need_audio"));
  const button = $("submit");
  button.disabled = true;
  button.textContent = t("submitting");
  try {
    let sessionId = await practiceSession();
    const form = () => {
      const f = new FormData();
      f.append("sentence_id", $("sentence").value);
      f.append("audio", state.attempt.blob, state.attempt.name);
      return f;
    };
    let record;
    try {
      record = await api("POST", `/api/v1/practice/sessions/${sessionId}/records`, { form: form() });
    } catch (e) {
      if (!/session/i.test(e.message)) throw e;
      sessionStorage.removeItem(`vb.session.${state.me.user_id}`); // a stale session id: make a new one
      sessionId = await practiceSession();
      record = await api("POST", `/api/v1/practice/sessions/${sessionId}/records`, { form: form() });
    }
    const submitted = await api("POST", "/api/v1/tasks/analysis/submit", {
      json: {
        practice_record_id: record.practice_record_id,
        parameters: { include_suggestions: true, language: state.lang === "en" ? "en" : "zh-TW" },
      },
    });
    watch(submitted.task_id, submitted);
  } catch (e) {
    showError(e.message);
  } finally {
    button.textContent = t("submit");
    updateSubmit();
  }
}

export function initPractice() {
  $("sentence").addEventListener("change", () => { $("reference-audio").hidden = true; updateSubmit(); });
  $("play-reference").addEventListener("click", playReference);
  $("sentence-form").addEventListener("submit", createSentence);
  $("attempt-file").addEventListener("change", onFileChosen);
  $("submit").addEventListener("click", submitAttempt);
  document.addEventListener("vb:task", updateSubmit); // a watched task started or ended (progress.js)
  if (recordingSupported()) {
    $("record").addEventListener("click", toggleRecording);
  } else {
    $("record").disabled = true;
    $("record-unsupported").hidden = false;
  }
}
