// What the page knows: the language, the login, the attempt, the task being watched, the result.
// One object shared by every view; each view reads and writes only its own parts.
export const state = {
  lang: localStorage.getItem("vb.lang") || "zh-TW",
  token: null, // the access token, in memory only; the session itself is the refresh cookie
  me: null,
  mode: "login",
  attempt: null, // {blob, name, chosen}
  recorder: null,
  task: null, // {id, lastEventId, snapshotLastId, done, socket, pollTimer, retries, events, ...}
  result: null,
};
