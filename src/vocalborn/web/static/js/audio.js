// Audio everywhere (issue #26): an attempt and its reference side by side in the result, the
// history and the therapist's timeline and review; a character's span in both; one sound at a time.
// The audio routes need the access token, so each recording is fetched once (api.js) and played
// from a blob: URL (the page's CSP allows media from blob:).
import { api } from "./api.js";
import { el, showError } from "./dom.js";
import { t } from "./i18n.js";

const urls = new Map(); // API path -> Promise of a blob: URL

export const referencePath = (sentenceId) => `/api/v1/practice/sentences/${sentenceId}/audio`;
export const attemptPath = (recordId) => `/api/v1/practice/records/${recordId}/audio`;

// The blob: URL of a recording, fetched once per page (forgotten on logout or when it fails).
export function audioUrl(path) {
  if (!urls.has(path)) {
    const p = api("GET", path, { blob: true }).then((b) => URL.createObjectURL(b));
    p.catch(() => urls.delete(path));
    urls.set(path, p);
  }
  return urls.get(path);
}

// After a logout (another login must not hear this one's recordings) or a changed reference.
export function forgetAudio(path) {
  const drop = path ? [path] : [...urls.keys()];
  for (const k of drop) {
    const p = urls.get(k);
    urls.delete(k);
    if (p) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
  }
}

export async function loadInto(audio, path) {
  const url = await audioUrl(path);
  if (audio.src !== url) audio.src = url; // a new URL after a logout revoked the old ones
  audio.dataset.path = path;
  return audio;
}

// One sound at a time: whatever starts playing pauses every other player of the page.
function pauseOthers(ev) {
  for (const a of document.querySelectorAll("audio")) if (a !== ev.target && !a.paused) a.pause();
}

// The clip player that the small play buttons and the character spans use.
let clip = null;
function clipPlayer() {
  if (!clip) {
    clip = el("audio", { id: "clip-player", preload: "auto", hidden: "" });
    document.body.appendChild(clip);
  }
  return clip;
}

let spanTimer = null;
let spanDone = null;

// Plays [start, end) seconds of the recording at `path` (all of it without a span); resolves when
// it stops (the end of the span, the end of the file, or another sound started).
export async function playPath(path, start, end) {
  const audio = clipPlayer();
  await loadInto(audio, path);
  return playSpan(audio, start, end);
}

export function playSpan(audio, start, end) {
  stopSpan();
  return new Promise((resolve) => {
    const from = Number.isFinite(start) ? Math.max(0, start - 0.05) : 0;
    const to = Number.isFinite(end) ? end + 0.05 : null;
    let started = false; // a pause queued by stopSpan() before this play is not its end
    const onPlaying = () => { started = true; };
    const onPause = () => { if (started) done(); };
    const done = () => {
      clearInterval(spanTimer);
      spanTimer = null;
      audio.removeEventListener("playing", onPlaying);
      audio.removeEventListener("pause", onPause);
      audio.removeEventListener("ended", done);
      if (spanDone === done) spanDone = null;
      resolve();
    };
    spanDone = done;
    audio.addEventListener("playing", onPlaying);
    audio.addEventListener("pause", onPause);
    audio.addEventListener("ended", done);
    audio.dataset.span = to === null ? "" : `${from.toFixed(2)}-${to.toFixed(2)}`; // what plays (tests read it)
    const go = () => {
      audio.currentTime = from;
      audio.play().catch(done);
      if (to !== null) spanTimer = setInterval(() => { if (audio.currentTime >= to) audio.pause(); }, 15);
    };
    if (audio.readyState >= 1) go();
    else audio.addEventListener("loadedmetadata", go, { once: true });
  });
}

function stopSpan() {
  if (spanDone) spanDone();
  for (const a of document.querySelectorAll("audio")) if (!a.paused) a.pause();
}

// A character's span in the reference, then in the attempt (only the reference for a character the
// attempt left out). `paths`: {reference, attempt}; a character has ref_start/ref_end on the
// reference's time axis and start/end on the attempt's.
let generation = 0; // a newer tap ends an older one's sequence
export async function playCharacter(paths, c, cell) {
  const num = (v) => (v === null || v === undefined ? NaN : Number(v));
  const mine = ++generation;
  for (const other of document.querySelectorAll(".vb-playing")) other.classList.remove("vb-playing");
  if (cell) cell.classList.add("vb-playing");
  try {
    if (paths.reference && Number.isFinite(num(c.ref_start))) {
      await playPath(paths.reference, num(c.ref_start), num(c.ref_end));
      if (mine !== generation) return;
      await new Promise((r) => setTimeout(r, 250));
      if (mine !== generation) return;
    }
    if (paths.attempt && Number.isFinite(num(c.start))) await playPath(paths.attempt, num(c.start), num(c.end));
  } catch (e) {
    showError(e.message);
  } finally {
    if (cell) cell.classList.remove("vb-playing");
  }
}

// Two small buttons: the attempt and the reference, played whole (a history or timeline row).
export function playButtons(recordId, sentenceId, attemptLabel) {
  const button = (label, path, cls) => el("button", {
    type: "button", class: `secondary small ${cls}`, "aria-label": label,
    onclick: (ev) => { ev.stopPropagation(); playPath(path).catch((e) => showError(e.message)); },
  }, `▶ ${label}`);
  return el("span", { class: "plays" },
    recordId ? button(attemptLabel || t("play_attempt"), attemptPath(recordId), "play-attempt") : null,
    sentenceId ? button(t("legend_reference"), referencePath(sentenceId), "play-reference") : null);
}

// Two players side by side (the result, the review): the reference and the attempt.
export function fillPair(container, recordId, sentenceId, attemptLabel) {
  const player = (label, path, cls) => {
    const audio = el("audio", { controls: "", preload: "auto", class: cls });
    loadInto(audio, path).catch((e) => showError(e.message));
    return el("div", { class: "player" }, el("span", { class: "player-label" }, label), audio);
  };
  container.replaceChildren(
    sentenceId ? player(t("legend_reference"), referencePath(sentenceId), "ref-audio") : null,
    recordId ? player(attemptLabel || t("legend_attempt"), attemptPath(recordId), "att-audio") : null,
  );
  container.hidden = !(recordId || sentenceId);
}

export function initAudio() {
  document.addEventListener("play", pauseOthers, true); // media events do not bubble: capture
}
