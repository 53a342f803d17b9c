// Logging in, registering and out (#auth, the header); entering the page for the login's role.
import { api, onSessionExpired } from "./api.js";
import { $, showError, showNotice } from "./dom.js";
import { enterHome } from "./home.js";
import { t } from "./i18n.js";
import { loadSentences } from "./practice.js";
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
  $("auth-submit").textContent = t(mode === "login" ? "login" : "register");
}

async function login(email, password) {
  const form = new URLSearchParams({ username: email, password });
  const data = await api("POST", "/api/v1/auth/login", { form });
  state.token = data.access_token;
  sessionStorage.setItem("vb.token", state.token);
}

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
  $("therapist-note").hidden = learnerLike;
  await enterHome(); // learner or therapist home
  await loadSentences();
}

export function logout() {
  stopWatching();
  state.token = null;
  state.me = null;
  sessionStorage.removeItem("vb.token");
  $("who").hidden = true;
  $("logout").hidden = true;
  $("auth").hidden = false;
  for (const id of ["practice", "progress", "result", "learner-home", "learner-more", "therapist-home"]) $(id).hidden = true;
}

export function initAuth() {
  $("tab-login").addEventListener("click", () => setMode("login"));
  $("tab-register").addEventListener("click", () => setMode("register"));
  $("auth-form").addEventListener("submit", onAuthSubmit);
  $("logout").addEventListener("click", logout);
  onSessionExpired(logout);
}
