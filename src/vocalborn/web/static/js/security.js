// The second factor for therapists and admins (#security): set up, scan the QR code, confirm
// with a code, keep the recovery codes.
import { api } from "./api.js";
import { $, el, showError } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./state.js";

export function showSecurity() {
  const eligible = state.me && (state.me.role === "therapist" || state.me.role === "admin");
  $("security").hidden = !eligible;
  if (!eligible) return;
  const on = Boolean(state.me.totp_enabled);
  $("totp-state").textContent = t(on ? "totp_on" : "totp_off");
  $("totp-start").hidden = on;
  if (on) $("totp-enrol").hidden = true;
}

async function start() {
  showError("");
  try {
    const setup = await api("POST", "/api/v1/auth/totp/setup");
    $("totp-qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(setup.qr_svg)}`;
    $("totp-secret").textContent = setup.secret;
    $("totp-enrol").hidden = false;
    $("totp-done").hidden = true;
    $("totp-confirm-code").focus();
  } catch (e) {
    showError(e.message);
  }
}

async function confirm(ev) {
  ev.preventDefault();
  showError("");
  try {
    const done = await api("POST", "/api/v1/auth/totp/confirm", { json: { code: $("totp-confirm-code").value.trim() } });
    $("recovery-codes").replaceChildren(...done.recovery_codes.map((c) => el("li", {}, c)));
    $("totp-done").hidden = false;
    $("totp-confirm-code").value = "";
    state.me.totp_enabled = true;
    showSecurity();
  } catch (e) {
    showError(e.message);
  }
}

export function initSecurity() {
  $("totp-start").addEventListener("click", start);
  $("totp-form").addEventListener("submit", confirm);
}
