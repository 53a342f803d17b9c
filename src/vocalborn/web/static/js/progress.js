// The waiting view (#progress): the task WebSocket for events, the status endpoint for the estimate
// and as a fallback; on success the result view shows the scores.
// It tells the other views through document events: "vb:task" when the watched task starts or
// ends (the submit button), "vb:analysed" (detail: the task id) when its result is shown.
import { api } from "./api.js";
import { $, showError } from "./dom.js";
import { STEPS, stepName, t } from "./i18n.js";
import { renderResult } from "./result.js";
import { state } from "./state.js";

function taskChanged() {
  document.dispatchEvent(new CustomEvent("vb:task"));
}

export function stopWatching() {
  const task = state.task;
  if (!task) return;
  task.done = true;
  clearInterval(task.pollTimer);
  clearTimeout(task.reconnectTimer);
  if (task.socket && task.socket.readyState <= 1) task.socket.close(1000);
}

export function watch(taskId, submitted) {
  stopWatching();
  state.result = null;
  state.task = {
    id: taskId, lastEventId: 0, snapshotLastId: 0, done: false, socket: null, retries: 0, events: [],
    progress: 0, status: submitted ? submitted.status : "pending", step: null, eta: null, queue: submitted ? submitted.queue_position : null,
    sentenceId: submitted ? submitted.sentence_id : null, // the result plays its reference (audio.js)
  };
  $("progress").dataset.task = taskId;
  $("event-log").replaceChildren();
  $("result").hidden = true;
  $("progress").hidden = false;
  $("bar-fill").className = "fill";
  renderLastProgress();
  $("progress").scrollIntoView({ block: "start", behavior: "smooth" });
  connect();
  poll();
  state.task.pollTimer = setInterval(poll, 3000);
  taskChanged();
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

export function eventItem(m) {
  const li = document.createElement("li");
  const time = new Date(m.timestamp).toLocaleTimeString(state.lang === "en" ? "en" : "zh-TW");
  const step = m.current_step ? ` · ${stepName(m.current_step)}` : "";
  li.textContent = `${time} ${t("ev_" + m.event_type)} ${m.progress}%${step}${m.message ? " · " + m.message : ""}`;
  return li;
}

function isoSeconds(d) {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$/.exec(d || "");
  if (!m) return null;
  return (Number(m[1] || 0) * 3600) + (Number(m[2] || 0) * 60) + Number(m[3] || 0);
}

export function renderLastProgress() {
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
      state.result.practice_record_id = s.practice_record_id;
      state.result.sentence_id = task.sentenceId;
      renderResult(state.result);
      document.dispatchEvent(new CustomEvent("vb:analysed", { detail: task.id })); // learner.js refreshes its lists
    } else {
      showError(t("failed_because", { msg: s.error_message || t("st_" + s.status) }));
    }
  } catch (e) {
    showError(e.message);
  }
  taskChanged();
}
