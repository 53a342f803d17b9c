// The bell: one's notifications (newest first), the unread count, pushed live over
// /api/v1/notifications/ws; for admins also the local mail outbox. And the two links mails carry:
// #verify-email=TOKEN and #reset-password=TOKEN, plus "forgot password" on the login form.
import { api } from "./api.js";
import { $, el, showError, showNotice } from "./dom.js";
import { t, when } from "./i18n.js";
import { state } from "./state.js";

let socket = null;
let retry = null;

function label(n) {
  const line = n.texts && (n.texts[state.lang === "en" ? "en" : "zh-TW"]);
  if (line) return line; // the server's line: the learner, the sentence, whether it counted
  const keys = { "review.saved": "notif_review", "analysis.succeeded": "notif_analysis", "practice.reminder_due": "notif_reminder" };
  return t(keys[n.type] || n.type);
}

function setCount(unread) {
  const badge = $("bell-count");
  badge.textContent = String(unread);
  badge.hidden = !unread;
  $("bell").setAttribute("aria-label", t("notifications_n", { n: unread }));
}

async function refreshCount() {
  try { setCount((await api("GET", "/api/v1/notifications/unread-count")).unread); } catch (_) { /* offline */ }
}

async function read(n) {
  if (!n.read_at) {
    try { await api("POST", `/api/v1/notifications/${n.id}/read`); } catch (e) { showError(e.message); }
    await refreshCount();
  }
  if (n.subject && n.subject.task_id) { // main.js opens it (the panel closes so it is in view)
    $("notif-panel").hidden = true;
    location.hash = `task=${n.subject.task_id}`;
  }
}

async function renderList() {
  const list = $("notif-list");
  let items = [];
  try { items = await api("GET", "/api/v1/notifications?limit=30"); } catch (e) { showError(e.message); return; }
  list.replaceChildren(...(items.length ? items.map((n) => el("li", { class: n.read_at ? "read" : "unread" },
    el("button", { type: "button", class: "link", onclick: () => read(n).then(renderList) }, label(n)),
    el("span", { class: "hint" }, ` ${when(n.created_at)}`))) : [el("li", { class: "hint" }, t("notif_none"))]));
  if (state.me && state.me.role === "admin") await renderMail();
}

async function renderMail() {
  $("mail-box").hidden = false;
  let mails = [];
  try { mails = await api("GET", "/api/v1/admin/mail?limit=10"); } catch (_) { return; }
  $("mail-list").replaceChildren(...(mails.length ? mails.map((m) => el("li", {},
    el("button", { type: "button", class: "link", onclick: () => showMail(m.id) }, m.subject),
    el("span", { class: "hint" }, ` → ${m.to} · ${when(m.received_at)}`))) : [el("li", { class: "hint" }, t("mail_none"))]));
}

async function showMail(id) {
  try { $("mail-body").textContent = (await api("GET", `/api/v1/admin/mail/${id}`)).body; $("mail-body").hidden = false; }
  catch (e) { showError(e.message); }
}

function toggle() {
  const panel = $("notif-panel");
  panel.hidden = !panel.hidden;
  if (!panel.hidden) renderList();
}

function connect() {
  if (!state.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/v1/notifications/ws?token=${encodeURIComponent(state.token)}`);
  socket.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "hello") setCount(m.unread);
    else if (m.type === "notification") { showNotice(label(m.notification), { keepError: true }); refreshCount(); if (!$("notif-panel").hidden) renderList(); }
    else refreshCount();
  };
  socket.onclose = () => { socket = null; if (state.me) retry = setTimeout(connect, 3000); };
}

export function startNotifications() {
  $("bell").hidden = false;
  stopNotifications(true);
  connect();
  refreshCount();
}

export function stopNotifications(keepBell) {
  clearTimeout(retry);
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  if (!keepBell) { $("bell").hidden = true; $("notif-panel").hidden = true; $("mail-box").hidden = true; }
}

async function forgot() {
  const email = $("email").value.trim() || prompt(t("email"));
  if (!email) return;
  try { await api("POST", "/api/v1/auth/password-reset", { json: { email } }); showNotice(t("reset_sent")); }
  catch (e) { showError(e.message); }
}

async function links() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const verify = hash.get("verify-email");
  const reset = hash.get("reset-password");
  if (verify) {
    history.replaceState(null, "", location.pathname + location.search);
    try { await api("POST", "/api/v1/auth/verify-email", { json: { token: verify } }); showNotice(t("email_verified")); }
    catch (e) { showError(e.message); }
  }
  if (reset) {
    $("reset-card").hidden = false;
    $("reset-card").scrollIntoView({ block: "nearest", behavior: "smooth" });
    $("reset-form").onsubmit = async (ev) => {
      ev.preventDefault();
      showError("");
      try {
        await api("POST", "/api/v1/auth/password-reset/confirm", { json: { token: reset, new_password: $("reset-password").value } });
        history.replaceState(null, "", location.pathname + location.search);
        $("reset-card").hidden = true;
        showNotice(t("password_reset_done"));
      } catch (e) { showError(e.message); }
    };
  }
}

export function initNotifications() {
  $("bell").addEventListener("click", toggle);
  $("forgot").addEventListener("click", forgot);
  links();
  window.addEventListener("hashchange", links); // a link pasted into a tab already open
}
