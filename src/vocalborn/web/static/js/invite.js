// The therapist's invitation (issue #26): the single-use code, the link that opens the page with
// the code filled in, the link as a QR code (made by the server, no network), a copy button.
import { api } from "./api.js";
import { $, showError, showNotice } from "./dom.js";
import { t, when } from "./i18n.js";

let shown = null; // the invitation on screen (its code and link are in the creating answer only)

export async function makeInvite() {
  showError("");
  try {
    shown = await api("POST", "/api/v1/links/invitations", { json: { expires_in_hours: 72 } });
    renderInvite();
  } catch (e) { showError(e.message); }
}

export function renderInvite() {
  if (!shown) return;
  const inv = shown;
  $("invite-code-shown").textContent = inv.code;
  $("invite-code-shown").hidden = false;
  $("invite-expires").textContent = t("invite_valid", { when: when(inv.expires_at) });
  $("invite-url").textContent = inv.url || "";
  $("invite-url").href = inv.url || "#";
  $("invite-url").hidden = !inv.url;
  $("invite-url-text").value = inv.url || "";
  if (inv.qr_svg) $("invite-qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(inv.qr_svg)}`;
  $("invite-qr").hidden = !inv.qr_svg;
  $("invite-box").hidden = !inv.url;
}

// The clipboard API where the page may use it (HTTPS or localhost), else the selected text and the
// browser's copy command.
async function copyInvite() {
  const text = $("invite-url-text").value;
  if (!text) return;
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); ok = true; }
  } catch (_) { ok = false; }
  if (!ok) {
    $("invite-url-text").select();
    try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
  }
  if (ok) showNotice(t("copied"));
  else { $("invite-url-text").select(); showError(t("copy_failed")); }
}

export function forgetInvite() {
  shown = null;
  $("invite-box").hidden = true;
  $("invite-code-shown").hidden = true;
  $("invite-expires").textContent = "";
}

export function initInvite() {
  $("make-invite").addEventListener("click", makeInvite);
  $("copy-invite").addEventListener("click", copyInvite);
  $("invite-url-text").addEventListener("focus", (ev) => ev.target.select());
}
