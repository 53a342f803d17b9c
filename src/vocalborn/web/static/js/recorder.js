// Recording in the browser (MediaRecorder): the learner's attempt (practice.js) and the therapist's
// reference (sentences.js).
export function recordingSupported() {
  return Boolean(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

function pickMime() {
  for (const [mime, ext] of [["audio/webm;codecs=opus", "webm"], ["audio/ogg;codecs=opus", "ogg"], ["audio/mp4", "m4a"], ["audio/webm", "webm"]]) {
    if (MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(mime)) return { mime, ext };
  }
  return { mime: "", ext: "webm" };
}

// Starts recording; tick(seconds) while it runs, done(blob, name, seconds) once stopped. Resolves
// to the MediaRecorder (stop() ends it); rejects when the microphone is refused.
export async function startRecorder({ tick, done }) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const { mime, ext } = pickMime();
  const rec = new MediaRecorder(stream, mime ? { mimeType: mime } : undefined);
  const chunks = [];
  const started = Date.now();
  const timer = setInterval(() => tick((Date.now() - started) / 1000), 250);
  rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  rec.onstop = () => {
    clearInterval(timer);
    stream.getTracks().forEach((tr) => tr.stop());
    done(new Blob(chunks, { type: rec.mimeType || mime || "audio/webm" }), `recording.${ext}`, (Date.now() - started) / 1000);
  };
  rec.start();
  return rec;
}
