// VocalBorn's page: log in, pick a sentence, record, submit, watch, read the scores; the learner's
// and the therapist's homes. Native ES modules, one per view, no build step:
//   state.js     what the page knows          i18n.js      strings (zh-TW, English), dates, scores
//   dom.js       DOM helpers, error/notice    api.js       the same-origin API
//   auth.js      log in, register, log out    practice.js  sentence, recording, submit (#practice)
//   progress.js  watching the task (#progress) result.js  scores, characters, pitch chart (#result)
//   home.js      which home a role sees       learner.js / therapist.js  the two homes
//   characters.js  the sentence character by character (self-contained)
//   audio.js     attempt and reference players, character spans, one sound at a time
//   invite.js    the therapist's invitation: code, link, QR code, copy
//   sentences.js the therapist's sentences: record a reference, edit, delete
//   recorder.js  MediaRecorder for attempts and references    report.js  the PDF/CSV report
//   drills.js    suggested minimal pairs in the therapist's timeline
//   notifications.js  the bell (live), the mail outbox for admins, the reset / verify links
// This file switches the language and wires what spans views.
import { api } from "./api.js";
import { initAudio } from "./audio.js";
import { initAuth, leave, resume, setMode, showWho } from "./auth.js";
import { $, showError } from "./dom.js";
import { renderHome } from "./home.js";
import { t } from "./i18n.js";
import { initLearner, openLearnerTask } from "./learner.js";
import { initNotifications } from "./notifications.js";
import { initPractice, updateSubmit } from "./practice.js";
import { eventItem, renderLastProgress, stopWatching } from "./progress.js";
import { initResult, renderResult, scrollToNextResult } from "./result.js";
import { initSecurity, showSecurity } from "./security.js";
import { initSentences } from "./sentences.js";
import { state } from "./state.js";
import { initTherapist, openTherapistTask } from "./therapist.js";

// Every label, and whatever is on screen, again in the page's language.
function applyLanguage() {
  document.documentElement.lang = state.lang === "en" ? "en" : "zh-Hant-TW";
  document.title = t("app_title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  $("lang").textContent = state.lang === "en" ? "中文" : "English";
  $("auth-submit").textContent = t(state.mode === "login" ? "login" : "register");
  if (state.recorder) $("record").textContent = t("record_stop");
  if (state.task) {
    renderLastProgress();
    $("event-log").replaceChildren(...state.task.events.map(eventItem));
  }
  if (state.live) $("live").textContent = t(state.live);
  if (state.attempt && state.attempt.chosen) $("attempt-name").textContent = t("chosen", { name: state.attempt.name });
  if (state.result) renderResult(state.result);
  if (state.me) { showWho(); showSecurity(); }
  if (state.me) renderHome();
}

// Back to the practice view for another attempt.
function practiseAgain() {
  stopWatching();
  state.task = null;
  state.result = null;
  state.attempt = null;
  $("attempt-file").value = "";
  $("attempt-audio").hidden = true;
  $("attempt-name").textContent = "";
  $("record-time").textContent = "";
  $("progress").hidden = true;
  $("result").hidden = true;
  scrollToNextResult();
  updateSubmit();
  $("practice").scrollIntoView({ block: "start", behavior: "smooth" });
}

function switchLanguage() {
  state.lang = state.lang === "en" ? "zh-TW" : "en";
  // a message on screen was written in the other language: it goes (the action can be redone)
  showError("");
  $("notice").hidden = true;
  localStorage.setItem("vb.lang", state.lang);
  applyLanguage();
  // the suggestions come from the API in the chosen language
  if (state.result && state.result.task_id) {
    api("GET", `/api/v1/tasks/analysis/${state.result.task_id}/result`).then((r) => {
      const { task_id: taskId, practice_record_id: recordId, sentence_id: sentenceId } = state.result;
      Object.assign(r, { task_id: taskId, practice_record_id: recordId, sentence_id: sentenceId });
      state.result = r; renderResult(r);
    }).catch((e) => showError(e.message));
  }
}

// #task=ID (a notification in the bell, the link in a mail): that analysis, once logged in; the
// learner sees its result with the review, the therapist the learner's timeline and its review.
// The address is cleared after, so the same link opens it again.
function openTaskLink() {
  const taskId = new URLSearchParams(location.hash.slice(1)).get("task");
  if (!taskId || !state.me) return;
  history.replaceState(null, "", location.pathname + location.search);
  if (state.me.role === "therapist") openTherapistTask(taskId);
  else openLearnerTask(taskId);
}

function init() {
  $("lang").addEventListener("click", switchLanguage);
  $("again").addEventListener("click", practiseAgain);
  initAudio();
  initAuth();
  initPractice();
  initResult();
  initLearner();
  initTherapist();
  initSecurity();
  initSentences();
  initNotifications();
  document.addEventListener("vb:entered", openTaskLink);
  window.addEventListener("hashchange", openTaskLink);
  // the browser refused a form (a required field is empty): an error from before is not its answer
  document.addEventListener("invalid", () => showError(""), true);
  setMode("login");
  applyLanguage();
  resume().catch((e) => { leave(); showError(e.message); });
}

init(); // a module runs once the document is parsed
