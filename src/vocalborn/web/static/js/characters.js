/* Per-character verdicts of an analysis result (issues #9 and #22).
 *
 * renderCharacters(containerEl, characters, lang, extras) draws the practice sentence with each
 * character coloured by its verdict, `error_type`: none (said right), tone (wrong tone),
 * mispronunciation (the sounds differ), omission (not said); null is a character never judged
 * (punctuation): left plain and never counted. Under each character its pinyin with tone marks;
 * the tone the engine heard is shown only on a tone error (in the tooltip whenever it heard one). Extra syllables the learner said
 * (extras.insertions) are marked between the characters, and extras.completeness (0..100) is shown
 * above. Results from before issue #22 have no error_type: it is read from their status and issues.
 * `characters` is detailed_analysis.characters; an empty or missing list hides the container.
 * Issue #26: extras.marks (a Set of character indexes) are the characters a therapist marked, drawn
 * with a pen mark in the same grid; extras.onChar(c, cell) makes each judged character a button
 * (the page plays its span, or the therapist marks it); extras.tapHint explains what a tap does.
 * Self-contained (it imports nothing of the page) so the page can change freely around it.
 */
const TEXT = {
  "zh-TW": {
    title: "逐字結果", none: "正確", tone: "聲調不對", mispronunciation: "發音不對", omission: "漏念",
    expected: "應為第 {t} 聲", expected_neutral: "應為輕聲", heard: "聽到第 {t} 聲", heard_neutral: "聽到輕聲",
    heard_none: "聲調沒有判斷", unjudged: "沒有判斷：另一個句子", confidence: "把握度", completeness: "完整度",
    said: "念到 {n}/{m} 個字", extra: "多念", extra_legend: "多念的音節", extra_long: "多念了一個音節（{a}–{b} 秒）",
    legend: "顏色表示每個字的結果；字下方是拼音。", marked: "治療師標記", marked_long: "治療師標記這個字聽起來不對", ref: "示範 {a}–{b} 秒", att: "你的錄音 {a}–{b} 秒",
  },
  en: {
    title: "Character by character", none: "right", tone: "wrong tone", mispronunciation: "sounds different",
    omission: "not said", expected: "expected tone {t}", expected_neutral: "expected neutral tone",
    heard: "heard tone {t}", heard_neutral: "heard neutral tone", heard_none: "tone not judged", unjudged: "not judged: another sentence",
    confidence: "confidence", completeness: "Completeness", said: "{n} of {m} characters said",
    extra: "extra", extra_legend: "extra syllable", extra_long: "extra syllable ({a}-{b} s)",
    legend: "The colour is each character's verdict; below it, its pinyin.",
    marked: "marked by the therapist", marked_long: "your therapist marked this character as sounding wrong",
    ref: "reference {a}-{b} s", att: "your recording {a}-{b} s",
  },
};
export const ERROR_TYPES = ["none", "tone", "mispronunciation", "omission"];

function tr(lang, key, vars) {
  const table = TEXT[lang === "en" ? "en" : "zh-TW"];
  let s = table[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, String(v));
  return s;
}
function num(v) { return v === null || v === undefined ? "-" : Number(v).toFixed(2); }

// The verdict: error_type when the engine wrote one, else read from an older result's status.
export function errorType(c) {
  if (!c) return null;
  if ("error_type" in c) return ERROR_TYPES.includes(c.error_type) ? c.error_type : null;
  const issues = Array.isArray(c.issues) ? c.issues : [];
  if (c.status === "matched") return "none";
  if (c.status === "missing") return "omission";
  if (c.status === "deviating") return issues.includes("tone") && !issues.includes("pronunciation") ? "tone" : "mispronunciation";
  return null;
}

// "jin1" -> "jīn" (older results carry numbered pinyin only).
const MARKS = { a: "āáǎà", e: "ēéěè", i: "īíǐì", o: "ōóǒò", u: "ūúǔù", "ü": "ǖǘǚǜ" };
export function toneMarks(p) {
  const m = /^([a-zü:v]+)([1-5])$/i.exec(String(p || ""));
  if (!m) return p || "";
  const syl = m[1].replace(/u:|v/g, "ü"), tone = Number(m[2]);
  if (tone === 5) return syl;
  const i = /[ae]/.test(syl) ? syl.search(/[ae]/) : syl.includes("ou") ? syl.indexOf("o")
    : Math.max(...[...syl].map((ch, k) => (ch in MARKS ? k : -1)));
  if (i < 0) return syl;
  return syl.slice(0, i) + MARKS[syl[i]][tone - 1] + syl.slice(i + 1);
}

// The heard tone is shown under a character only where it is the verdict: a tone error. A heard
// tone the engine did not claim as an error (not confident enough, or its contour close to the
// reference's) would read as "right, but heard tone 2": it stays in the tooltip.
function showsHeard(c, kind) {
  const heard = c.heard_tone;
  if (heard === null || heard === undefined) return false;
  return kind === "tone";
}
const heardText = (lang, t) => (t === 5 ? tr(lang, "heard_neutral") : tr(lang, "heard", { t }));

function insertionCell(lang, ins) {
  const cell = document.createElement("span");
  cell.className = "vb-insert";
  cell.setAttribute("role", "listitem");
  const long = tr(lang, "extra_long", { a: num(ins.start), b: num(ins.end) });
  cell.title = long;
  cell.setAttribute("aria-label", long);
  cell.tabIndex = 0;
  const plus = document.createElement("span");
  plus.className = "vb-insert-mark";
  plus.textContent = "+";
  const label = document.createElement("span");
  label.className = "vb-insert-label";
  label.textContent = tr(lang, "extra");
  cell.append(plus, label);
  return cell;
}

function characterCell(lang, c, index, extras) {
  const cell = document.createElement("span");
  cell.setAttribute("role", "listitem");
  const ch = document.createElement("span");
  ch.className = "vb-char";
  ch.textContent = c.char || "";
  cell.appendChild(ch);
  const kind = errorType(c);
  if (kind === null) { // never judged (punctuation): plain, no pinyin, no verdict
    cell.className = "vb-cell vb-plain";
    return cell;
  }
  // extras.unjudged: another sentence was recorded, so no character is right or wrong (neutral)
  const unjudged = Boolean(extras && extras.unjudged);
  cell.className = unjudged ? "vb-cell vb-unjudged" : `vb-cell vb-et-${kind}`;
  if (!unjudged) cell.dataset.errorType = kind;
  const pinyin = document.createElement("span");
  pinyin.className = "vb-pinyin";
  pinyin.textContent = c.pinyin_marks || toneMarks(c.pinyin);
  cell.appendChild(pinyin);
  const heard = !unjudged && showsHeard(c, kind);
  if (heard) {
    const h = document.createElement("span");
    h.className = "vb-heard";
    h.textContent = heardText(lang, c.heard_tone);
    cell.appendChild(h);
  }
  const expected = c.expected_tone === 5 ? tr(lang, "expected_neutral") : tr(lang, "expected", { t: c.expected_tone ?? "-" });
  const conf = c.tone_confidence ?? null;
  const tip = unjudged ? [`${c.char} ${pinyin.textContent}`, tr(lang, "unjudged")] : [
    `${c.char} ${pinyin.textContent}`,
    tr(lang, kind),
    expected,
    c.heard_tone !== null && c.heard_tone !== undefined ? heardText(lang, c.heard_tone) : tr(lang, "heard_none"),
  ];
  if (conf !== null && !unjudged) tip.push(`${tr(lang, "confidence")} ${Math.round(100 * conf)}%`);
  tip.push(tr(lang, "ref", { a: num(c.ref_start), b: num(c.ref_end) }));
  if (c.start !== null && c.start !== undefined) tip.push(tr(lang, "att", { a: num(c.start), b: num(c.end) }));
  const marks = extras && extras.marks;
  const marked = Boolean(marks && marks.has(index));
  if (marked) {
    cell.classList.add("vb-marked");
    cell.dataset.marked = "true";
    const pen = document.createElement("span");
    pen.className = "vb-mark";
    pen.textContent = "✎";
    pen.setAttribute("aria-hidden", "true");
    cell.appendChild(pen);
    tip.push(tr(lang, "marked_long"));
  }
  cell.dataset.index = String(index);
  cell.title = tip.join("\n");
  cell.setAttribute("aria-label", [tip[0], tip[1], ...(heard ? [heardText(lang, c.heard_tone)] : []), ...(marked ? [tr(lang, "marked")] : [])].join(", "));
  cell.tabIndex = 0;
  if (extras && typeof extras.onChar === "function") {
    cell.setAttribute("role", "button");
    cell.classList.add("vb-tap");
    if (extras.pressed) cell.setAttribute("aria-pressed", String(marked));
    const tap = () => extras.onChar(c, cell, index);
    cell.addEventListener("click", tap);
    cell.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); tap(); } });
  }
  return cell;
}

export function renderCharacters(containerEl, characters, lang, extras) {
  if (!containerEl) return;
  containerEl.replaceChildren();
  const list = (Array.isArray(characters) ? characters : []).filter((c) => c && typeof c === "object");
  const judged = list.filter((c) => errorType(c) !== null);
  containerEl.hidden = judged.length === 0;
  if (!judged.length) return;
  containerEl.classList.add("vb-chars");
  const h = document.createElement("h3");
  h.textContent = tr(lang, "title");
  containerEl.appendChild(h);

  const unjudged = extras && extras.unjudged;
  if (unjudged) { // a note instead of the completeness, which measures nothing here
    const p = document.createElement("p");
    p.className = "vb-unjudged-note";
    p.textContent = unjudged;
    containerEl.appendChild(p);
  }
  const completeness = unjudged ? null : extras && extras.completeness;
  if (completeness !== null && completeness !== undefined) {
    const p = document.createElement("p");
    p.className = "vb-completeness";
    const said = judged.filter((c) => errorType(c) !== "omission").length;
    const strong = document.createElement("strong");
    strong.textContent = `${tr(lang, "completeness")} ${Math.round(Number(completeness))}%`;
    p.append(strong, ` · ${tr(lang, "said", { n: said, m: judged.length })}`);
    containerEl.appendChild(p);
  }

  // the extra syllables, by the index of the character they follow (null: before the first)
  const after = new Map();
  for (const ins of (extras && Array.isArray(extras.insertions) ? extras.insertions : [])) {
    if (!ins || typeof ins !== "object") continue;
    const key = Number.isInteger(ins.after_index) ? ins.after_index : null;
    if (!after.has(key)) after.set(key, []);
    after.get(key).push(ins);
  }
  const line = document.createElement("div");
  line.className = "vb-chars-line";
  line.setAttribute("role", "list");
  for (const ins of after.get(null) || []) line.appendChild(insertionCell(lang, ins));
  list.forEach((c, i) => {
    const index = Number.isInteger(c.index) ? c.index : i;
    line.appendChild(characterCell(lang, c, index, extras));
    for (const ins of after.get(index) || []) line.appendChild(insertionCell(lang, ins));
  });
  containerEl.appendChild(line);

  const legend = document.createElement("ul");
  legend.className = "vb-legend";
  for (const kind of unjudged ? [] : ERROR_TYPES) {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = `vb-swatch vb-et-${kind}`;
    li.append(sw, tr(lang, kind));
    legend.appendChild(li);
  }
  const li = document.createElement("li");
  const sw = document.createElement("span");
  sw.className = "vb-swatch vb-insert";
  sw.textContent = "+";
  li.append(sw, tr(lang, "extra_legend"));
  legend.appendChild(li);
  if (extras && extras.marks && extras.marks.size) {
    const m = document.createElement("li");
    const pen = document.createElement("span");
    pen.className = "vb-swatch vb-mark-swatch";
    pen.textContent = "✎";
    m.append(pen, tr(lang, "marked"));
    legend.appendChild(m);
  }
  containerEl.appendChild(legend);
  const hint = document.createElement("p");
  hint.className = "hint";
  hint.textContent = (unjudged ? "" : tr(lang, "legend")) + (extras && extras.tapHint ? " " + extras.tapHint : "");
  containerEl.appendChild(hint);
}
