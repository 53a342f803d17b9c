// The practice view (#practice): choose a sentence (therapists add them), record or choose the
// attempt, submit it; then progress.js watches the task.
import { api } from "./api.js";
import { loadInto, referencePath } from "./audio.js";
import { $, showError } from "./dom.js";
import { t } from "./i18n.js";
import { watch } from "./progress.js";
import { recordingSupported, startRecorder } from "./recorder.js";
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
  $("no-sentences").dataset.i18n = state.me && state.me.role === "therapist" ? "no_sentences_therapist" : "no_sentences";
  $("no-sentences").textContent = t($("no-sentences").dataset.i18n);
  $("play-reference").disabled = list.length === 0;
  $("reference-audio").hidden = true;
  updateSubmit();
  document.dispatchEvent(new CustomEvent("vb:sentences")); // sentences.js redraws the therapist's list
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
    const audio = await loadInto($("reference-audio"), referencePath($("sentence").value));
    audio.hidden = false;
    await audio.play().catch(() => {});
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

async function toggleRecording() {
  showError("");
  if (state.recorder) {
    state.recorder.stop();
    return;
  }
  try {
    state.recorder = await startRecorder({
      tick: (secs) => { $("record-time").textContent = `● ${secs.toFixed(0)} s`; },
      done: (blob, name, secs) => {
        state.recorder = null;
        $("record").classList.remove("recording");
        $("record").textContent = t("record_start");
        $("record-time").textContent = t("recorded", { n: secs.toFixed(1) });
        setAttempt(blob, name);
        $("attempt-name").textContent = "";
      },
    });
  } catch (e) {
    showError(t("mic_denied", { msg: e.message }));
    return;
  }
  $("record").classList.add("recording");
  $("record").textContent = t("record_stop");
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
    watch(submitted.task_id, { ...submitted, sentence_id: $("sentence").value });
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
