// What the page knows: the language, the login, the attempt, the task being watched, the result.
// One object shared by every view; each view reads and writes only its own parts.
// The page's language: the one chosen before on this browser, else the browser's first language we
// speak (navigator.languages: en-* English, zh-* Chinese), else zh-TW.
export function browserLanguage(tags) {
  for (const tag of tags || []) {
    const l = String(tag).toLowerCase();
    if (l.startsWith("zh")) return "zh-TW";
    if (l.startsWith("en")) return "en";
  }
  return "zh-TW";
}

export const state = {
  lang: localStorage.getItem("vb.lang") || browserLanguage(navigator.languages || [navigator.language]),
  token: null, // the access token, in memory only; the session itself is the refresh cookie
  me: null,
  mode: "login",
  attempt: null, // {blob, name, chosen}
  recorder: null,
  task: null, // {id, lastEventId, snapshotLastId, done, socket, pollTimer, retries, events, ...}
  result: null,
};
