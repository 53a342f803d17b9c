// VocalBorn waiting page: log in, pick a sentence, record, submit, watch, read the scores.
// Plain browser JavaScript; talks to the same-origin API and the task WebSocket.
"use strict";

const STEPS = [
  ["載入音訊", "Loading audio"],
  ["語音特徵提取", "Extracting speech features"],
  ["發音比對", "Comparing with the reference"],
  ["評分計算", "Scoring"],
  ["生成建議", "Generating suggestions"],
];

const T = {
  "zh-TW": {
    app_title: "VocalBorn 發音練習", login: "登入", register: "註冊", logout: "登出",
    email: "電子郵件", password: "密碼", name: "姓名", role: "身分",
    role_learner: "學習者", role_therapist: "治療師", role_admin: "管理員",
    step_sentence: "選擇練習句子", sentence: "句子", play_reference: "播放示範錄音",
    no_sentences: "還沒有句子：請治療師先新增一個含示範錄音的句子。",
    new_sentence: "新增句子（治療師）", sentence_text: "句子文字", reference_file: "示範錄音檔", share_sentence: "所有學員都可練習（否則只限連結的學員）",
    create_sentence: "新增句子", step_record: "錄下你的練習", record_start: "開始錄音", record_stop: "停止錄音",
    record_unsupported: "這個瀏覽器無法錄音（需要 HTTPS 或 localhost），請改選檔案。",
    or_choose_file: "或選擇錄音檔", submit: "送出分析", submitting: "上傳中…",
    therapist_note: "治療師負責新增句子與示範錄音；學習者登入後錄音並送出分析。",
    step_progress: "分析中", step_done: "分析結束", status: "狀態", eta: "預估剩餘時間", queue_position: "排隊順位", live: "即時連線",
    step_result: "分析結果", overall: "總分", pronunciation: "發音準確度", fluency: "流暢度", rhythm: "節奏",
    pitch_chart: "音高曲線：你的錄音與示範", legend_reference: "示範", legend_attempt: "你的錄音",
    legend_deviation: "偏差區段", suggestions: "建議", improvement_areas: "需要加強", again: "再練習一次",
    footer: "錄音只用於這次分析。", none: "（無）",
    st_pending: "排隊中", st_processing: "分析中", st_retry: "稍後重試", st_success: "完成",
    st_failure: "失敗", st_cancelled: "已取消",
    live_on: "已連線", live_off: "重新連線中…", live_done: "已結束", seconds: "約 {n} 秒", unknown: "—",
    step_of: "第 {n}/{total} 步：{label}", waiting_worker: "等待分析程式",
    created_sentence: "已新增句子。", registered: "註冊完成，已登入。", recorded: "已錄音 {n} 秒",
    chosen: "已選擇：{name}", need_audio: "請先錄音或選擇錄音檔。", need_sentence: "請先選擇句子。",
    mic_denied: "無法使用麥克風：{msg}", pitch_facts: "音高相關 {corr}，走向一致 {dir}。",
    pitch_none: "這段錄音的音高無法比較。", time_axis: "時間（秒，示範錄音）", st_axis: "半音",
    ev_submitted: "已送出", ev_queued: "重新排入佇列", ev_started: "開始分析", ev_progress: "進度",
    ev_retry: "重試", ev_succeeded: "完成", ev_failed: "失敗", ev_cancelled: "已取消", ev_resubmitted: "重新送出",
    dev_pronunciation: "發音", dev_missing: "缺漏", dev_tone: "聲調", dev_pause: "停頓", dev_too_long: "過長",
    dev_too_short: "過短", failed_because: "分析失敗：{msg}", session_expired: "登入已過期，請重新登入。",
  },
  en: {
    app_title: "VocalBorn practice", login: "Log in", register: "Register", logout: "Log out",
    email: "Email", password: "Password", name: "Name", role: "Role",
    role_learner: "Learner", role_therapist: "Therapist", role_admin: "Admin",
    step_sentence: "Choose a sentence", sentence: "Sentence", play_reference: "Play the reference",
    no_sentences: "No sentences yet: a therapist needs to add one with a reference recording.",
    new_sentence: "Add a sentence (therapists)", sentence_text: "Sentence text", reference_file: "Reference recording", share_sentence: "Every learner may practise it (otherwise only your linked learners)",
    create_sentence: "Add sentence", step_record: "Record your attempt", record_start: "Start recording",
    record_stop: "Stop recording",
    record_unsupported: "This browser cannot record here (it needs HTTPS or localhost); choose a file instead.",
    or_choose_file: "or choose a recording", submit: "Analyse", submitting: "Uploading…",
    therapist_note: "Therapists add sentences and reference recordings; learners log in to record and submit.",
    step_progress: "Analysing", step_done: "Analysis finished", status: "Status", eta: "Time left (estimate)", queue_position: "Queue position",
    live: "Live updates", step_result: "Your result", overall: "Overall", pronunciation: "Pronunciation",
    fluency: "Fluency", rhythm: "Rhythm", pitch_chart: "Pitch: your attempt over the reference",
    legend_reference: "Reference", legend_attempt: "Your attempt", legend_deviation: "Deviating span",
    suggestions: "Suggestions", improvement_areas: "To improve", again: "Practise again",
    footer: "Recordings are used for this analysis only.", none: "(none)",
    st_pending: "Queued", st_processing: "Analysing", st_retry: "Retrying soon", st_success: "Done",
    st_failure: "Failed", st_cancelled: "Cancelled",
    live_on: "connected", live_off: "reconnecting…", live_done: "finished", seconds: "about {n} s", unknown: "—",
    step_of: "Step {n} of {total}: {label}", waiting_worker: "waiting for a worker",
    created_sentence: "Sentence added.", registered: "Registered and logged in.", recorded: "Recorded {n} s",
    chosen: "Chosen: {name}", need_audio: "Record or choose a recording first.", need_sentence: "Choose a sentence first.",
    mic_denied: "Cannot use the microphone: {msg}", pitch_facts: "Pitch correlation {corr}, direction agreement {dir}.",
    pitch_none: "The pitch of this recording could not be compared.", time_axis: "time (s, reference)",
    st_axis: "semitones",
    ev_submitted: "submitted", ev_queued: "queued again", ev_started: "started", ev_progress: "progress",
    ev_retry: "retry", ev_succeeded: "succeeded", ev_failed: "failed", ev_cancelled: "cancelled",
    ev_resubmitted: "resubmitted",
    dev_pronunciation: "pronunciation", dev_missing: "missing", dev_tone: "tone", dev_pause: "pause",
    dev_too_long: "too long", dev_too_short: "too short", failed_because: "The analysis failed: {msg}",
    session_expired: "Your login expired; please log in again.",
  },
};

const $ = (id) => document.getElementById(id);
const state = {
  lang: localStorage.getItem("vb.lang") || "zh-TW",
  token: sessionStorage.getItem("vb.token"),
  me: null,
  mode: "login",
  attempt: null, // {blob, name}
  recorder: null,
  task: null, // {id, lastEventId, snapshotLastId, done, socket, pollTimer, retries, shownResult}
  result: null,
};

function t(key, vars) {
  let s = (T[state.lang] && T[state.lang][key]) || T["zh-TW"][key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
  return s;
}

function applyLanguage() {
  document.documentElement.lang = state.lang === "en" ? "en" : "zh-Hant-TW";
  document.title = t("app_title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  $("lang").textContent = state.lang === "en" ? "中文" : "English";
  $("auth-submit").textContent = t(state.mode === "login" ? "login" : "register");
  if (state.recorder) $("record").textContent = t("record_stop");
  if (state.task) {
    renderLastProgress();
    $("event-log").replaceChildren(...state.task.events.map(eventItem));
  }
  if (state.live) $("live").textContent = t(state.live);
  if (state.attempt && state.attempt.chosen) $("attempt-name").textContent = t("chosen", { name: state.attempt.name });
  if (state.result) renderResult(state.result);
  if (state.me) showWho();
  if (state.me && window.renderHome) window.renderHome();
}

// --- messages ------------------------------------------------------------------------------
function showError(msg) {
  const el = $("error");
  el.textContent = msg;
  el.hidden = !msg;
  if (msg) el.scrollIntoView({ block: "nearest", behavior: "smooth" });
}
function showNotice(msg) {
  const el = $("notice");
  el.textContent = msg;
  el.hidden = !msg;
  if (msg) setTimeout(() => { if (el.textContent === msg) el.hidden = true; }, 4000);
}

// --- the API -------------------------------------------------------------------------------
async function api(method, path, { json, form, blob } = {}) {
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
    logout();
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
    throw new Error(detail);
  }
  if (blob) return r.blob();
  return r.status === 204 ? null : r.json();
}

// --- log in / register -----------------------------------------------------------------------
function setMode(mode) {
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

function showWho() {
  $("who").textContent = `${state.me.name} · ${t("role_" + state.me.role)}`;
}

async function enter() {
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
  if (window.enterHome) await window.enterHome(); // learner or therapist home (home.js)
  await loadSentences();
}

function logout() {
  stopWatching();
  state.token = null;
  state.me = null;
  sessionStorage.removeItem("vb.token");
  $("who").hidden = true;
  $("logout").hidden = true;
  $("auth").hidden = false;
  for (const id of ["practice", "progress", "result", "learner-home", "learner-more", "therapist-home"]) $(id).hidden = true;
}

// --- sentences ---------------------------------------------------------------------------------
async function loadSentences(selectId) {
  const list = await api("GET", "/api/v1/practice/sentences?limit=200");
  state.sentences = list;
  const sel = $("sentence");
  sel.replaceChildren();
  // assigned sentences first; identical texts told apart by when they were added
  const assigned = new Set(state.assignedIds || []);
  const ordered = [...list.filter((s) => assigned.has(s.sentence_id)), ...list.filter((s) => !assigned.has(s.sentence_id))];
  for (const s of ordered) {
    const opt = document.createElement("option");
    opt.value = s.sentence_id;
    opt.textContent = sentenceLabel(s, list) + (assigned.has(s.sentence_id) ? ` ★ ${t("assigned_mark")}` : "");
    sel.appendChild(opt);
  }
  if (selectId) sel.value = selectId;
  $("no-sentences").hidden = list.length > 0;
  $("play-reference").disabled = list.length === 0;
  $("reference-audio").hidden = true;
  updateSubmit();
}

// The text of a sentence, with the date and time it was added when another sentence reads the same.
function sentenceLabel(s, list) {
  const twins = (list || state.sentences || []).filter((o) => o.text === s.text);
  if (twins.length < 2) return s.text;
  const when = new Date(s.created_at).toLocaleString(state.lang === "en" ? "en" : "zh-TW", {
    month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  return `${s.text} (${when} · ${s.sentence_id.slice(0, 4)})`;
}

async function playReference() {
  showError("");
  try {
    const blob = await api("GET", `/api/v1/practice/sentences/${$("sentence").value}/audio`, { blob: true });
    const audio = $("reference-audio");
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(blob);
    audio.hidden = false;
    await audio.play().catch(() => {});
  } catch (e) {
    showError(e.message);
  }
}

async function createSentence(ev) {
  ev.preventDefault();
  showError("");
  const file = $("reference-file").files[0];
  const form = new FormData();
  form.append("text", $("sentence-text").value.trim());
  form.append("reference_audio", file, file.name);
  form.append("shared", $("sentence-shared").checked ? "true" : "false");
  try {
    const s = await api("POST", "/api/v1/practice/sentences", { form });
    $("sentence-form").reset();
    await loadSentences(s.sentence_id);
    showNotice(t("created_sentence"));
  } catch (e) {
    showError(e.message);
  }
}

// --- the attempt: record or choose -----------------------------------------------------------------
function setAttempt(blob, name) {
  state.attempt = { blob, name };
  const audio = $("attempt-audio");
  if (audio.src) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(blob);
  audio.hidden = false;
  updateSubmit();
}

function updateSubmit() {
  $("submit").disabled = !(state.attempt && $("sentence").value) || Boolean(state.task && !state.task.done);
}

function recordingSupported() {
  return Boolean(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

function pickMime() {
  for (const [mime, ext] of [["audio/webm;codecs=opus", "webm"], ["audio/ogg;codecs=opus", "ogg"], ["audio/mp4", "m4a"], ["audio/webm", "webm"]]) {
    if (MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(mime)) return { mime, ext };
  }
  return { mime: "", ext: "webm" };
}

async function toggleRecording() {
  showError("");
  if (state.recorder) {
    state.recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    showError(t("mic_denied", { msg: e.message }));
    return;
  }
  const { mime, ext } = pickMime();
  const rec = new MediaRecorder(stream, mime ? { mimeType: mime } : undefined);
  const chunks = [];
  const started = Date.now();
  rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  rec.onstop = () => {
    clearInterval(state.recordTimer);
    stream.getTracks().forEach((tr) => tr.stop());
    state.recorder = null;
    $("record").classList.remove("recording");
    $("record").textContent = t("record_start");
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    $("record-time").textContent = t("recorded", { n: secs });
    setAttempt(new Blob(chunks, { type: rec.mimeType || mime || "audio/webm" }), `recording.${ext}`);
    $("attempt-name").textContent = "";
  };
  rec.start();
  state.recorder = rec;
  $("record").classList.add("recording");
  $("record").textContent = t("record_stop");
  state.recordTimer = setInterval(() => {
    $("record-time").textContent = `● ${((Date.now() - started) / 1000).toFixed(0)} s`;
  }, 250);
}

function onFileChosen() {
  const file = $("attempt-file").files[0];
  if (!file) return;
  setAttempt(file, file.name);
  state.attempt.chosen = true;
  $("attempt-name").textContent = t("chosen", { name: file.name });
}

// --- submit --------------------------------------------------------------------------------------
async function practiceSession() {
  const key = `vb.session.${state.me.user_id}`;
  let id = sessionStorage.getItem(key);
  if (!id) {
    const s = await api("POST", "/api/v1/practice/sessions", { json: { title: "web" } });
    id = s.practice_session_id;
    sessionStorage.setItem(key, id);
  }
  return id;
}

async function submitAttempt() {
  showError("");
  if (!$("sentence").value) return showError(t("need_sentence"));
  if (!state.attempt) return showError(t("need_audio"));
  const button = $("submit");
  button.disabled = true;
  button.textContent = t("submitting");
  try {
    let sessionId = await practiceSession();
    const form = () => {
      const f = new FormData();
      f.append("sentence_id", $("sentence").value);
      f.append("audio", state.attempt.blob, state.attempt.name);
      return f;
    };
    let record;
    try {
      record = await api("POST", `/api/v1/practice/sessions/${sessionId}/records`, { form: form() });
    } catch (e) {
      if (!/session/i.test(e.message)) throw e;
      sessionStorage.removeItem(`vb.session.${state.me.user_id}`); // a stale session id: make a new one
      sessionId = await practiceSession();
      record = await api("POST", `/api/v1/practice/sessions/${sessionId}/records`, { form: form() });
    }
    const submitted = await api("POST", "/api/v1/tasks/analysis/submit", {
      json: {
        practice_record_id: record.practice_record_id,
        parameters: { include_suggestions: true, language: state.lang === "en" ? "en" : "zh-TW" },
      },
    });
    watch(submitted.task_id, submitted);
  } catch (e) {
    showError(e.message);
  } finally {
    button.textContent = t("submit");
    updateSubmit();
  }
}

// --- watching: the socket for events, the status endpoint for the estimate --------------------
function stopWatching() {
  const task = state.task;
  if (!task) return;
  task.done = true;
  clearInterval(task.pollTimer);
  clearTimeout(task.reconnectTimer);
  if (task.socket && task.socket.readyState <= 1) task.socket.close(1000);
}

function watch(taskId, submitted) {
  stopWatching();
  state.result = null;
  state.task = {
    id: taskId, lastEventId: 0, snapshotLastId: 0, done: false, socket: null, retries: 0, events: [],
    progress: 0, status: submitted ? submitted.status : "pending", step: null, eta: null, queue: submitted ? submitted.queue_position : null,
  };
  $("event-log").replaceChildren();
  $("result").hidden = true;
  $("progress").hidden = false;
  $("bar-fill").className = "fill";
  renderLastProgress();
  $("progress").scrollIntoView({ block: "start", behavior: "smooth" });
  connect();
  poll();
  state.task.pollTimer = setInterval(poll, 3000);
  updateSubmit();
}

function connect() {
  const task = state.task;
  if (!task || task.done) return;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${proto}//${location.host}/api/v1/tasks/ws/task/${task.id}?after=${task.lastEventId}&token=${encodeURIComponent(state.token)}`;
  const ws = new WebSocket(url);
  task.socket = ws;
  ws.onopen = () => { task.retries = 0; setLive("live_on"); };
  ws.onmessage = (ev) => onTaskMessage(task, JSON.parse(ev.data));
  ws.onclose = (ev) => {
    if (state.task !== task) return;
    if (ev.code === 1000) { setLive("live_done"); finish(task); return; }
    if (ev.code === 1008) { setLive("live_done"); showError(ev.reason || "refused"); return; }
    if (task.done) return;
    setLive("live_off");
    task.retries += 1;
    task.reconnectTimer = setTimeout(connect, Math.min(10000, 500 * 2 ** Math.min(task.retries, 5)));
  };
}

function setLive(key) {
  state.live = key;
  $("live").textContent = t(key);
}

function onTaskMessage(task, m) {
  if (state.task !== task) return;
  if (m.event_type === "snapshot") {
    task.snapshotLastId = m.last_event_id || 0;
    applyProgress(task, m);
    return;
  }
  if (m.event_id !== null && m.event_id !== undefined) {
    if (m.event_id <= task.lastEventId) return;
    task.lastEventId = m.event_id;
    logEvent(m);
    if (m.event_id <= task.snapshotLastId) return; // history: the snapshot is already newer
  }
  applyProgress(task, m);
}

function applyProgress(task, m) {
  task.status = m.status;
  // Within one run progress only grows; a new run ("started") or a final state sets it.
  const grows = m.status === "processing" && m.event_type !== "started" && m.event_type !== "snapshot";
  task.progress = grows ? Math.max(task.progress, m.progress) : m.progress;
  if (m.current_step) task.step = m.current_step;
  if (m.status === "failure" && m.message) task.error = m.message;
  renderLastProgress();
}

function logEvent(m) {
  state.task.events.push(m);
  $("event-log").appendChild(eventItem(m));
  $("event-log").scrollTop = $("event-log").scrollHeight;
}

function eventItem(m) {
  const li = document.createElement("li");
  const time = new Date(m.timestamp).toLocaleTimeString(state.lang === "en" ? "en" : "zh-TW");
  const step = m.current_step ? ` · ${stepName(m.current_step)}` : "";
  li.textContent = `${time} ${t("ev_" + m.event_type)} ${m.progress}%${step}${m.message ? " · " + m.message : ""}`;
  return li;
}

function stepName(label) {
  const i = STEPS.findIndex((s) => s[0] === label || s[1] === label);
  if (i < 0) return label;
  return state.lang === "en" ? STEPS[i][1] : STEPS[i][0];
}

function isoSeconds(d) {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$/.exec(d || "");
  if (!m) return null;
  return (Number(m[1] || 0) * 3600) + (Number(m[2] || 0) * 60) + Number(m[3] || 0);
}

function renderLastProgress() {
  const task = state.task;
  if (!task) return;
  const p = Math.max(0, Math.min(100, Number(task.progress) || 0));
  $("bar-fill").style.width = `${p}%`;
  $("bar").setAttribute("aria-valuenow", String(p));
  $("percent").textContent = `${p}%`;
  $("bar-fill").classList.toggle("done", task.status === "success");
  const title = ["success", "failure", "cancelled"].includes(task.status) ? "step_done" : "step_progress";
  $("progress-title").dataset.i18n = title;
  $("progress-title").textContent = t(title);
  $("bar-fill").classList.toggle("failed", task.status === "failure" || task.status === "cancelled");
  const i = STEPS.findIndex((s) => s[0] === task.step || s[1] === task.step);
  let label = "";
  if (task.status === "pending" || task.status === "retry") label = t("waiting_worker");
  else if (i >= 0) label = t("step_of", { n: i + 1, total: STEPS.length, label: stepName(task.step) });
  $("step-label").textContent = label;
  $("status-text").textContent = t("st_" + task.status);
  const active = ["pending", "retry", "processing"].includes(task.status);
  const secs = active ? isoSeconds(task.eta) : null;
  $("eta").textContent = secs === null ? t("unknown") : t("seconds", { n: Math.round(secs) });
  // the queue position means something only while waiting; once a worker runs it, it is gone
  const waiting = task.status === "pending" || task.status === "retry";
  $("queue").textContent = waiting && task.queue ? String(task.queue) : t("unknown");
}

async function poll() {
  const task = state.task;
  if (!task || task.done) return;
  try {
    const s = await api("GET", `/api/v1/tasks/analysis/${task.id}/status`);
    if (state.task !== task) return;
    task.eta = s.estimated_remaining_time;
    task.queue = s.queue_position;
    if (s.error_message) task.error = s.error_message;
    // The socket is the fast path; the status catches up when it is down.
    if (["success", "failure", "cancelled"].includes(s.status)) {
      task.status = s.status;
      task.progress = s.progress;
      finish(task);
    } else if (s.status !== task.status || s.progress > task.progress) {
      task.status = s.status;
      task.progress = Math.max(task.progress, s.progress);
      if (s.current_step) task.step = s.current_step;
    }
    renderLastProgress();
  } catch (e) {
    showError(e.message);
  }
}

async function finish(task) {
  if (task.finished) return;
  task.finished = true;
  task.done = true;
  clearInterval(task.pollTimer);
  clearTimeout(task.reconnectTimer);
  try {
    const s = await api("GET", `/api/v1/tasks/analysis/${task.id}/status`);
    task.status = s.status;
    task.progress = s.progress;
    task.eta = s.estimated_remaining_time;
    task.queue = s.queue_position;
    renderLastProgress();
    if (s.status === "success") {
      state.result = await api("GET", `/api/v1/tasks/analysis/${task.id}/result`);
      state.result.task_id = task.id;
      renderResult(state.result);
      if (window.afterResult) window.afterResult(task.id); // refresh history, progress, practice set
    } else {
      showError(t("failed_because", { msg: s.error_message || t("st_" + s.status) }));
    }
  } catch (e) {
    showError(e.message);
  }
  updateSubmit();
}

// --- the result ----------------------------------------------------------------------------------
function fmt(v) {
  return v === null || v === undefined ? "–" : String(Math.round(Number(v)));
}

// The one place a result is rendered (live, from the history, or again in another language).
function renderResult(r) {
  $("result").hidden = false;
  $("score-overall").textContent = fmt(r.overall_score);
  $("score-pronunciation").textContent = fmt(r.pronunciation_accuracy);
  $("score-fluency").textContent = fmt(r.fluency_score);
  $("score-rhythm").textContent = fmt(r.rhythm_score);
  $("suggestions").textContent = r.suggestions || t("none");
  const areas = $("areas");
  areas.replaceChildren();
  for (const a of r.improvement_areas && r.improvement_areas.length ? r.improvement_areas : [t("none")]) {
    const li = document.createElement("li");
    li.textContent = a;
    areas.appendChild(li);
  }
  const da = r.detailed_analysis || {};
  // Issue #9: the sentence with each character marked (characters.js).
  if (window.renderCharacters) window.renderCharacters($("characters"), da.characters || [], state.lang);
  // the therapist's review beside the engine's scores (home.js)
  if (window.renderReviewBeside) window.renderReviewBeside(r);
  drawPitch(da.pitch_analysis || {}, da.deviations || []);
  const pa = da.pitch_analysis || {};
  $("pitch-facts").textContent = pa.measurable === false || pa.correlation === undefined ? t("pitch_none")
    : t("pitch_facts", { corr: Number(pa.correlation).toFixed(2), dir: `${Math.round(100 * Number(pa.direction_agreement || 0))}%` });
  if (!drawPitch.scrolled) { $("result").scrollIntoView({ block: "start", behavior: "smooth" }); drawPitch.scrolled = true; }
}

const SVG = "http://www.w3.org/2000/svg";
function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function drawPitch(pa, deviations) {
  const svg = $("pitch-chart");
  // Drawn in the container's own pixels, so labels stay readable on a phone.
  const W = Math.round(Math.max(300, Math.min(900, svg.parentElement.clientWidth || 720)));
  const H = W < 500 ? 220 : 280, L = 40, R = 10, TOP = 22, B = 40;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  state.chart = { pa, deviations };
  svg.replaceChildren(svgEl("title", { id: "chart-title" }, t("pitch_chart")));
  const time = pa.time || [];
  const ref = pa.reference || [];
  const att = pa.attempt || [];
  const values = [...ref, ...att].filter((v) => v !== null && v !== undefined);
  if (!time.length || !values.length) {
    svg.appendChild(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, t("pitch_none")));
    return;
  }
  const t0 = Math.min(time[0], ...deviations.map((d) => d.ref_start ?? d.start));
  const t1 = Math.max(time[time.length - 1], ...deviations.map((d) => d.ref_end ?? d.end));
  let lo = Math.floor(Math.min(...values)) - 1;
  let hi = Math.ceil(Math.max(...values)) + 1;
  if (hi - lo < 4) { lo -= 2; hi += 2; }
  const x = (s) => L + ((s - t0) / Math.max(1e-6, t1 - t0)) * (W - L - R);
  const y = (v) => TOP + (1 - (v - lo) / (hi - lo)) * (H - TOP - B);

  // grid and axes
  const stStep = hi - lo > 16 ? 4 : 2;
  for (let v = Math.ceil(lo / stStep) * stStep; v <= hi; v += stStep) {
    svg.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.appendChild(svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, (v > 0 ? "+" : "") + v));
  }
  const span = t1 - t0;
  const tStep = span > 8 ? 2 : span > 3 ? 1 : 0.5;
  for (let s = Math.ceil(t0 / tStep) * tStep; s <= t1 + 1e-9; s += tStep) {
    svg.appendChild(svgEl("line", { x1: x(s), x2: x(s), y1: TOP, y2: H - B, class: "grid" }));
    svg.appendChild(svgEl("text", { x: x(s), y: H - B + 16, "text-anchor": "middle", class: "axis" }, s.toFixed(tStep < 1 ? 1 : 0)));
  }
  svg.appendChild(svgEl("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "axis" }, t("time_axis")));
  svg.appendChild(svgEl("text", { x: 4, y: TOP - 8, class: "axis" }, t("st_axis")));

  // deviating spans, on the reference's time axis
  for (const d of deviations) {
    const a = d.ref_start ?? d.start, b = d.ref_end ?? d.end;
    if (a === undefined || b === undefined) continue;
    const rect = svgEl("rect", { x: x(a), y: TOP, width: Math.max(3, x(b) - x(a)), height: H - TOP - B, class: "dev" });
    rect.appendChild(svgEl("title", {}, `${t("dev_" + d.kind)} ${a.toFixed(2)}–${b.toFixed(2)} s`));
    svg.appendChild(rect);
    svg.appendChild(svgEl("text", { x: x(a) + 2, y: TOP - 6, class: "dev-label" }, t("dev_" + d.kind)));
  }

  // the two contours; a null is unvoiced, so the line breaks there
  const path = (series) => {
    let dstr = "", pen = false;
    series.forEach((v, i) => {
      if (v === null || v === undefined || time[i] === undefined) { pen = false; return; }
      dstr += `${pen ? "L" : "M"}${x(time[i]).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    });
    return dstr.trim();
  };
  svg.appendChild(svgEl("path", { d: path(ref), class: "ref" }));
  svg.appendChild(svgEl("path", { d: path(att), class: "att" }));
}

// --- wiring --------------------------------------------------------------------------------------
function init() {
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "en" ? "zh-TW" : "en";
    localStorage.setItem("vb.lang", state.lang);
    applyLanguage();
    // the suggestions come from the API in the chosen language
    if (state.result && state.result.task_id) {
      api("GET", `/api/v1/tasks/analysis/${state.result.task_id}/result`).then((r) => {
        r.task_id = state.result.task_id; state.result = r; renderResult(r);
      }).catch((e) => showError(e.message));
    }
  });
  $("tab-login").addEventListener("click", () => setMode("login"));
  $("tab-register").addEventListener("click", () => setMode("register"));
  $("auth-form").addEventListener("submit", onAuthSubmit);
  $("logout").addEventListener("click", logout);
  $("sentence").addEventListener("change", () => { $("reference-audio").hidden = true; updateSubmit(); });
  $("play-reference").addEventListener("click", playReference);
  $("sentence-form").addEventListener("submit", createSentence);
  $("attempt-file").addEventListener("change", onFileChosen);
  $("submit").addEventListener("click", submitAttempt);
  $("again").addEventListener("click", () => {
    stopWatching();
    state.task = null;
    state.result = null;
    state.attempt = null;
    $("attempt-file").value = "";
    $("attempt-audio").hidden = true;
    $("attempt-name").textContent = "";
    $("record-time").textContent = "";
    $("progress").hidden = true;
    $("result").hidden = true;
    drawPitch.scrolled = false;
    updateSubmit();
    $("practice").scrollIntoView({ block: "start", behavior: "smooth" });
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (state.chart && !$("result").hidden) drawPitch(state.chart.pa, state.chart.deviations); }, 150);
  });
  if (recordingSupported()) {
    $("record").addEventListener("click", toggleRecording);
  } else {
    $("record").disabled = true;
    $("record-unsupported").hidden = false;
  }
  setMode("login");
  applyLanguage();
  if (state.token) enter().catch((e) => { logout(); showError(e.message); });
}

document.addEventListener("DOMContentLoaded", init);
