// The same-origin API: JSON in and out, errors in words, in the page's language.
import { state } from "./state.js";
import { t } from "./i18n.js";

let sessionExpired = () => {};

// What to do when the API refuses the token (auth.js logs out).
export function onSessionExpired(handler) {
  sessionExpired = handler;
}

// A new access token from the refresh cookie (httpOnly, SameSite=Strict: this script never sees
// it). One refresh at a time across every tab of the page (Web Locks), so two tabs never send the
// same refresh token (a reused one ends the session); the tab that waits sends the cookie the
// other tab's refresh just set. Resolves to true when the page has a token again.
let refreshing = null;
export function refreshSession() {
  if (!refreshing) {
    const run = async () => {
      try {
        const r = await fetch("/api/v1/auth/refresh", { method: "POST" });
        if (!r.ok) return false;
        state.token = (await r.json()).access_token;
        return true;
      } catch (_) {
        return false;
      }
    };
    const locked = navigator.locks ? navigator.locks.request("vb-refresh", run) : run();
    refreshing = locked.finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function api(method, path, options = {}) {
  const r = await call(method, path, options);
  if (r === RETRY) return call(method, path, options, true);
  return r;
}

const RETRY = Symbol("retry");

async function call(method, path, { json, form, blob } = {}, retried = false) {
  const headers = {};
  let body;
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  headers["Accept-Language"] = state.lang === "en" ? "en" : "zh-TW"; // API errors and suggestions in the page's language
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  let r;
  try {
    r = await fetch(path, { method, headers, body });
  } catch (e) {
    throw new Error(state.lang === "en" ? `Cannot reach the server (${e.message})` : `無法連到伺服器（${e.message}）`);
  }
  if (r.status === 401 && state.token) {
    if (!retried && !path.startsWith("/api/v1/auth/") && await refreshSession()) return RETRY;
    sessionExpired();
    throw new Error(t("session_expired"));
  }
  if (!r.ok) {
    let detail = `${r.status} ${r.statusText}`;
    try {
      const data = await r.json();
      if (typeof data.message === "string") detail = data.message;
      else if (typeof data.detail === "string") detail = data.detail;
      else if (Array.isArray(data.detail)) detail = data.detail.map((d) => d.msg).join("; ");
    } catch (_) { /* not JSON */ }
    const err = new Error(detail);
    err.status = r.status;
    err.secondFactor = r.headers.get("X-Second-Factor") === "required";
    throw err;
  }
  if (blob) return r.blob();
  return r.status === 204 ? null : r.json();
}
