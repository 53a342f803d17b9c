// Small DOM helpers shared by every view, and the two message lines (error, notice).
export const $ = (id) => document.getElementById(id);

// An element with attributes ("class", "onclick", ...) and children (strings or elements; null skipped).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
export function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export function showError(msg) {
  const el = $("error");
  el.textContent = msg;
  el.hidden = !msg;
  if (msg) el.scrollIntoView({ block: "nearest", behavior: "smooth" });
}
// A success says the action went through: an error left from before it goes (not for news that
// arrives by itself, keepError: the error may be what the user is reading).
export function showNotice(msg, { keepError = false } = {}) {
  if (msg && !keepError) showError("");
  const el = $("notice");
  el.textContent = msg;
  el.hidden = !msg;
  if (msg) setTimeout(() => { if (el.textContent === msg) el.hidden = true; }, 4000);
}
