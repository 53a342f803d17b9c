// VocalBorn's page: log in, pick a sentence, record, submit, watch, read the scores; the learner's
// and the therapist's homes. Native ES modules, one per view, no build step:
//   state.js     what the page knows          i18n.js      strings (zh-TW, English), dates, scores
//   dom.js       DOM helpers, error/notice    api.js       the same-origin API
//   auth.js      log in, register, log out    practice.js  sentence, recording, submit (#practice)
//   progress.js  watching the task (#progress) result.js  scores, characters, pitch chart (#result)
//   home.js      which home a role sees       learner.js / therapist.js  the two homes
//   characters.js  the sentence character by character (self-contained)
//   notifications.js  the bell (live), the mail outbox for admins, the reset / verify links
// This file switches the language and wires what spans views.
import { api } from "./api.js";
import { initAuth, leave, resume, setMode, showWho } from "./auth.js";
import { $, showError } from "./dom.js";
import { renderHome } from "./home.js";
import { t } from "./i18n.js";
import { initLearner } from "./learner.js";
import { initNotifications } from "./notifications.js";
import { initPractice, updateSubmit } from "./practice.js";
import { eventItem, renderLastProgress, stopWatching } from "./progress.js";
import { initResult, renderResult, scrollToNextResult } from "./result.js";
import { initSecurity, showSecurity } from "./security.js";
import { state } from "./state.js";
import { initTherapist } from "./therapist.js";

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
  localStorage.setItem("vb.lang", state.lang);
  applyLanguage();
  // the suggestions come from the API in the chosen language
  if (state.result && state.result.task_id) {
    api("GET", `/api/v1/tasks/analysis/${state.result.task_id}/result`).then((r) => {
      r.task_id = state.result.task_id; state.result = r; renderResult(r);
    }).catch((e) => showError(e.message));
  }
}

function init() {
  $("lang").addEventListener("click", switchLanguage);
  $("again").addEventListener("click", practiseAgain);
  initAuth();
  initPractice();
  initResult();
  initLearner();
  initTherapist();
  initSecurity();
  initNotifications();
  setMode("login");
  applyLanguage();
  resume().catch((e) => { leave(); showError(e.message); });
}

init(); // a module runs once the document is parsed
