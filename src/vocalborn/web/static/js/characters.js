/* Per-character marks of an analysis result (issue #9).
 *
 * renderCharacters(containerEl, characters, lang) draws the practice sentence with every
 * character marked: matched characters plain, deviating ones highlighted (pronunciation,
 * tone, missing), with the expected and heard tone below each judged character and the
 * details (pinyin, confidence, times) in its tooltip. `characters` is
 * detailed_analysis.characters of a result; an empty or missing list hides the container.
 * Self-contained (it imports nothing of the page) so the page can change freely around it.
 */
const TEXT = {
  "zh-TW": {
    title: "逐字結果", matched: "正確", pronunciation: "發音不同", tone: "聲調不對", missing: "沒有聽到",
    expected: "應為第 {t} 聲", heard: "聽到第 {t} 聲", heard_none: "聲調無法判斷", pinyin: "拼音",
    confidence: "把握度", legend: "標色的字需要加強；字下方是「應讀聲調 / 聽到聲調」。",
    ref: "示範 {a}–{b} 秒", att: "你的錄音 {a}–{b} 秒",
  },
  en: {
    title: "Character by character", matched: "matched", pronunciation: "sounds different", tone: "wrong tone",
    missing: "not heard", expected: "expected tone {t}", heard: "heard tone {t}", heard_none: "tone not measurable",
    pinyin: "pinyin", confidence: "confidence", legend: "Highlighted characters need work; below each: expected / heard tone.",
    ref: "reference {a}-{b} s", att: "your recording {a}-{b} s",
  },
};
function tr(lang, key, vars) {
  const table = TEXT[lang === "en" ? "en" : "zh-TW"];
  let s = table[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, String(v));
  return s;
}
function num(v) { return v === null || v === undefined ? "-" : Number(v).toFixed(2); }

export function renderCharacters(containerEl, characters, lang) {
  if (!containerEl) return;
  containerEl.replaceChildren();
  const list = Array.isArray(characters) ? characters : [];
  const judged = list.filter((c) => c && c.status && c.status !== "not_judged");
  containerEl.hidden = judged.length === 0;
  if (!judged.length) return;
  containerEl.classList.add("vb-chars");
  const h = document.createElement("h3");
  h.textContent = tr(lang, "title");
  containerEl.appendChild(h);
  const line = document.createElement("div");
  line.className = "vb-chars-line";
  line.setAttribute("role", "list");
  for (const c of list) {
    const cell = document.createElement("span");
    cell.setAttribute("role", "listitem");
    const ch = document.createElement("span");
    ch.className = "vb-char";
    ch.textContent = c.char || "";
    cell.appendChild(ch);
    if (!c.status || c.status === "not_judged") {
      cell.className = "vb-cell vb-plain";
      line.appendChild(cell);
      continue;
    }
    const issues = Array.isArray(c.issues) ? c.issues : [];
    cell.className = "vb-cell vb-" + (c.status === "matched" ? "ok" : c.status === "missing" ? "missing" : "dev");
    if (issues.includes("tone")) cell.classList.add("vb-tone-issue");
    if (issues.includes("pronunciation")) cell.classList.add("vb-pron-issue");
    const tone = document.createElement("span");
    tone.className = "vb-tone";
    tone.textContent = `${c.expected_tone ?? "-"}/${c.heard_tone ?? "-"}`;
    cell.appendChild(tone);
    const what = c.status === "matched" ? [tr(lang, "matched")] : issues.map((i) => tr(lang, i));
    const tip = [
      `${c.char} ${c.pinyin || ""}`,
      what.join(", "),
      tr(lang, "expected", { t: c.expected_tone }),
      c.heard_tone ? tr(lang, "heard", { t: c.heard_tone }) : tr(lang, "heard_none"),
      `${tr(lang, "confidence")} ${c.confidence === null || c.confidence === undefined ? "-" : Math.round(100 * c.confidence) + "%"}`,
      tr(lang, "ref", { a: num(c.ref_start), b: num(c.ref_end) }),
    ];
    if (c.start !== null && c.start !== undefined) tip.push(tr(lang, "att", { a: num(c.start), b: num(c.end) }));
    cell.title = tip.join("\n");
    cell.setAttribute("aria-label", tip.slice(0, 4).join(", "));
    cell.tabIndex = 0;
    line.appendChild(cell);
  }
  containerEl.appendChild(line);
  const legend = document.createElement("p");
  legend.className = "hint";
  legend.textContent = tr(lang, "legend");
  containerEl.appendChild(legend);
}
