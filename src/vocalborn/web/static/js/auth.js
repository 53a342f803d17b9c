// Logging in, registering and out (#auth, the header); entering the page for the login's role.
import { api, onSessionExpired, refreshSession } from "./api.js";
import { forgetAudio } from "./audio.js";
import { forgetInvite } from "./invite.js";
import { $, showError, showNotice } from "./dom.js";
import { enterHome } from "./home.js";
import { t } from "./i18n.js";
import { loadSentences } from "./practice.js";
import { startNotifications, stopNotifications } from "./notifications.js";
import { showSecurity } from "./security.js";
import { stopWatching } from "./progress.js";
import { state } from "./state.js";

export function setMode(mode) {
  state.mode = mode;
  $("tab-login").classList.toggle("active", mode === "login");
  $("tab-register").classList.toggle("active", mode === "register");
  $("tab-login").setAttribute("aria-selected", String(mode === "login"));
  $("tab-register").setAttribute("aria-selected", String(mode === "register"));
  $("register-fields").hidden = mode !== "register";
  $("name").required = mode === "register";
  $("password").autocomplete = mode === "register" ? "new-password" : "current-password";
  $("password").minLength = mode === "register" ? 10 : 0; // the API says why a password is refused
  $("auth-submit").textContent = t(mode === "login" ? "login" : "register");
}

async function login(email, password) {
  const form = new URLSearchParams({ username: email, password });
  const code = $("totp-code").value.trim();
  if (code) form.set("totp_code", code);
  let data;
  try {
    data = await api("POST", "/api/v1/auth/login", { form });
  } catch (e) {
    if (e.secondFactor) { // the password was right: the account needs its code too
      $("totp-field").hidden = false;
      $("totp-code").value = "";
      $("totp-code").focus();
      if (!code) throw new Error(t("totp_needed"));
    }
    throw e;
  }
  $("totp-code").value = "";
  $("totp-field").hidden = true;
  state.token = data.access_token; // the refresh token came as an httpOnly cookie too
  localStorage.setItem(SIGNED_IN, "1");
}

// Not a secret: only whether this browser has a session to resume (so a first visit does not
// ask the API for a refresh it cannot have).
const SIGNED_IN = "vb.signed-in";

async function onAuthSubmit(ev) {
  ev.preventDefault();
  showError("");
  const email = $("email").value.trim();
  const password = $("password").value;
  try {
    if (state.mode === "register") {
      await api("POST", "/api/v1/auth/register", {
        json: { email, password, name: $("name").value.trim() || email, role: $("role").value },
      });
      await login(email, password);
      showNotice(t("registered"));
    } else {
      await login(email, password);
    }
    await enter();
  } catch (e) {
    showError(e.message);
  }
}

export function showWho() {
  $("who").textContent = `${state.me.name} · ${t("role_" + state.me.role)}`;
}

export async function enter() {
  state.me = await api("GET", "/api/v1/auth/me");
  showWho();
  $("who").hidden = false;
  $("logout").hidden = false;
  $("auth").hidden = true;
  $("practice").hidden = false;
  const therapist = state.me.role === "therapist";
  const learnerLike = state.me.role === "learner" || state.me.role === "admin";
  $("new-sentence").hidden = !(therapist || state.me.role === "admin");
  if (therapist) $("new-sentence").open = true;
  $("record-card").hidden = !learnerLike;
  // a therapist's practice view is their sentences, not the learner's numbered first step
  $("step-one").hidden = !learnerLike;
  $("sentence-title").dataset.i18n = learnerLike ? "step_sentence" : "sentences_title";
  $("sentence-title").textContent = t($("sentence-title").dataset.i18n);
  $("therapist-note").hidden = learnerLike;
  showSecurity();
  startNotifications(); // the bell, live
  await enterHome(); // learner or therapist home
  await loadSentences();
  document.dispatchEvent(new CustomEvent("vb:entered")); // main.js opens a #task= link now
}

// Ends the session on the server (its tokens are refused from now on) and forgets it here.
export async function logout() {
  const token = state.token;
  leave();
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  try {
    await fetch("/api/v1/auth/logout", { method: "POST", headers }); // the cookie goes along
  } catch (_) { /* offline: the session ends by itself */ }
}

// Back to the login form (the session ended, or the user logged out).
export function leave() {
  localStorage.removeItem(SIGNED_IN);
  stopWatching();
  forgetAudio();
  forgetInvite();
  stopNotifications();
  state.token = null;
  state.me = null;
  $("who").hidden = true;
  $("logout").hidden = true;
  $("auth").hidden = false;
  for (const id of ["practice", "progress", "result", "learner-home", "learner-more", "therapist-home", "security", "my-sentences"]) $(id).hidden = true;
}

// A page opened (or reloaded, or a new tab) resumes the session from the refresh cookie.
export async function resume() {
  if (!localStorage.getItem(SIGNED_IN)) return;
  if (await refreshSession()) await enter();
  else leave();
}

export function initAuth() {
  $("tab-login").addEventListener("click", () => setMode("login"));
  $("tab-register").addEventListener("click", () => setMode("register"));
  $("auth-form").addEventListener("submit", onAuthSubmit);
  $("logout").addEventListener("click", logout);
  // opened from an invitation link (?invite=CODE): the learner logs in or registers first
  $("invited-hint").hidden = !new URLSearchParams(location.search).get("invite");
  onSessionExpired(leave);
}
