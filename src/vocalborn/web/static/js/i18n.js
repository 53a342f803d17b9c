// Every string of the page in zh-TW and English (characters.js keeps its own), the analysis steps,
// and how dates and scores are shown.
import { state } from "./state.js";

export const STEPS = [
  ["載入音訊", "Loading audio"],
  ["語音特徵提取", "Extracting speech features"],
  ["發音比對", "Comparing with the reference"],
  ["評分計算", "Scoring"],
  ["生成建議", "Generating suggestions"],
];

export const T = {
  "zh-TW": {
    notifications: "通知", notifications_n: "通知（{n} 則未讀）", notif_none: "還沒有通知。",
    notif_analysis: "你的學員完成了一次分析", notif_review: "治療師回覆了你的練習",
    notif_reminder: "該練習囉：本週目標還沒完成",
    mail_outbox: "郵件外寄匣（本機）", mail_none: "沒有郵件。",
    forgot_password: "忘記密碼？", reset_sent: "若此電子郵件有帳號，重設連結已寄出。",
    reset_title: "設定新密碼", new_password: "新密碼", reset_submit: "更新密碼",
    password_reset_done: "密碼已更新，請用新密碼登入。", email_verified: "電子郵件已確認。",
    app_title: "VocalBorn 發音練習", login: "登入", register: "註冊", logout: "登出",
    email: "電子郵件", password: "密碼", name: "姓名", role: "身分",
    role_learner: "學習者", role_therapist: "治療師", role_admin: "管理員",
    step_sentence: "選擇練習句子", sentence: "句子", play_reference: "播放示範錄音",
    no_sentences: "還沒有句子：請治療師先新增一個含示範錄音的句子。",
    new_sentence: "新增句子（治療師）", sentence_text: "句子文字", share_sentence: "所有學員都可練習（否則只限連結的學員）",
    create_sentence: "新增句子", step_record: "錄下你的練習", record_start: "開始錄音", record_stop: "停止錄音",
    record_unsupported: "這個瀏覽器無法錄音（需要 HTTPS 或 localhost），請改選檔案。",
    or_choose_file: "或選擇錄音檔", submit: "送出分析", submitting: "上傳中…",
    therapist_note: "治療師負責新增句子與示範錄音；學習者登入後錄音並送出分析。",
    step_progress: "分析中", step_done: "分析結束", status: "狀態", eta: "預估剩餘時間", queue_position: "排隊順位", live: "即時連線",
    step_result: "分析結果", overall: "總分", completeness: "完整度", pronunciation: "發音準確度", fluency: "流暢度", rhythm: "節奏",
    pitch_chart: "音高曲線：你的錄音與示範", legend_reference: "示範", legend_attempt: "你的錄音",
    legend_deviation: "偏差區段", suggestions: "建議", improvement_areas: "需要加強", again: "再練習一次",
    footer: "錄音加密保存，你和連結的治療師可以重播；你可以在練習紀錄刪除任何一次錄音，或刪除整個帳號。", none: "（無）",
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
    // the homes (learner.js, therapist.js)
    my_therapist: "我的治療師", invite_code_placeholder: "治療師給你的邀請碼", accept_invite: "接受邀請",
    unlink: "解除連結", linked_with: "已連結：{name}（{email}）", not_linked: "還沒有連結治療師。輸入治療師給你的邀請碼：",
    assigned: "指定練習", no_assigned: "治療師還沒有指定句子。", assigned_mark: "指定",
    best_last: "最佳 {best} · 最近 {last} · 練習 {n} 次", practise: "練習這句",
    progress_title: "進步情形", progress_none: "完成一次分析後，這裡會畫出每次的分數。",
    progress_facts: "{n} 次練習：總分從 {first} 到最近 {last}（每次 {slope}）。",
    improved_chars: "進步的字：{chars}", history: "練習紀錄", no_history: "還沒有練習紀錄。", more: "更多",
    reviewed: "已評閱", open: "查看", my_learners: "我的學習者", make_invite: "產生邀請碼",
    invite_valid: "給學習者這個邀請碼，{when} 前有效，只能用一次。",
    no_learners: "還沒有連結的學習者：產生邀請碼給學習者。",
    flag_rule: "標記：從未練習、7 天沒有練習，或最近 3 次的總分比之前低 10 分以上。",
    learner_row: "最近練習 {last} · 本週 {week} 次 · 最近 10 次平均 {mean}",
    flag_never_practised: "從未練習", flag_inactive: "7 天沒練習", flag_declining: "分數下滑", ok_flag: "正常",
    goal_optional: "每週目標（可不填）", goal_attempts: "每週次數", goal_minutes_week: "每週分鐘", goal_days: "每週天數", goal_due: "期限",
    not_judged: "沒有逐字判斷：錄到的是另一個句子，所以字沒有對錯，完整度也不是分數。",
    timeline: "練習時間軸", assign: "指定這個句子", remove: "移除", review: "評閱", review_title: "評閱",
    attempt: "學習者的錄音", play: "播放", engine_scores: "系統評分", mark_chars: "點選聽起來不對的字：",
    comment: "評語", save_review: "儲存評閱", review_saved: "已儲存評閱（第 {v} 版）。",
    therapist_review: "治療師評閱", review_by: "{name} 的評分：{scores}", never: "從未",
    unlinked: "已解除連結。", linked_now: "已連結 {name}。",
    totp_code: "驗證碼（驗證器 App 或備用碼）", two_step: "兩步驟登入", totp_start: "開啟兩步驟登入",
    totp_scan: "用驗證器 App（Google Authenticator、1Password…）掃描 QR code，再輸入 App 顯示的 6 位數字。",
    totp_manual: "或手動輸入金鑰：", totp_confirm: "確認",
    totp_codes_hint: "備用碼（每組只能用一次，手機不在身邊時代替驗證碼）。請現在抄下或存好，之後不會再顯示：",
    totp_on: "已開啟：登入時需要驗證器的驗證碼。", totp_off: "未開啟：建議開啟，登入時除了密碼還要驗證器的驗證碼。",
    totp_needed: "請輸入驗證器 App 顯示的驗證碼。",
    // issue #26: goals, attempts that count
    week_title: "本週練習", week_attempts: "本週 {n} 次", week_minutes: "{n} 分鐘", week_days: "{n} 天",
    week_streak: "連續 {n} 天",
    week_dose: "達成 {dose}%", due_today_attempts: "今天還要練 {n} 次", due_today_minutes: "今天還要練 {n} 分鐘",
    due_done: "本週目標已達成", due_on: "期限 {date}", overdue: "已過期限", week_none: "治療師還沒有設定每週目標。",
    goal_line: "本週 {done}/{target} 次", goal_minutes: "{done}/{target} 分鐘",
    not_counted: "不計入", nc_silent: "錄音裡幾乎聽不到說話，這次不計入練習",
    nc_too_short: "錄音太短，沒有把整句話說完，這次不計入練習", nc_wrong_sentence: "說的內容和示範句子不同，這次不計入練習",
    delete: "刪除", delete_confirm: "刪除這次練習的錄音與結果？刪除後無法復原。", deleted: "已刪除這次練習。",
    dose: "達成 {dose}%", flag_below_dose: "低於目標一半", flag_falling_scores: "分數下滑", flag_no_practice: "7 天沒練習",
    // issue #26: audio everywhere, the review's whole result, invitations, sentences
    listen_title: "聽聽看：示範與你的錄音", play_attempt: "錄音", play_mine: "我的錄音", attempt_short: "學習者",
    tap_to_play: "點一個字，先聽示範再聽你的錄音裡的這個字。", pitch_chart_review: "音高曲線：學習者的錄音與示範",
    tap_marks: "點字標記聽起來不對的字（再點一次取消）。", tap_listens: "點字時播放這個字，而不是標記",
    invite_link_hint: "把連結傳給學習者，或讓學習者用手機相機掃描 QR code：打開後邀請碼已自動填好。",
    copy_link: "複製連結", copied: "已複製連結。", copy_failed: "無法自動複製，請手動複製選取的連結。",
    sentences_title: "句子與示範錄音", reference_how: "示範錄音：在這裡錄音，或選擇錄音檔。", ref_record: "錄製示範",
    ref_record_again: "重新錄製", reference_file: "或選擇示範錄音檔", need_reference: "請先錄製示範或選擇示範錄音檔。",
    my_sentences: "我的句子", no_my_sentences: "還沒有你新增的句子。", shared_short: "所有學員",
    edit: "編輯", save: "儲存", cancel: "取消", sentence_saved: "已儲存句子。",
    sentence_delete_confirm: "刪除句子「{text}」？已指定的練習會移除，學習者的練習紀錄保留。", sentence_deleted: "已刪除句子。",
    progress_axis: "日期", drills_title: "建議的對比練習", drills_hint: "從學習者仍念不對的字找出的最小對比（同音不同調、同韻不同聲母）。新的項目需要你的示範：按一下開始錄音，再按一下送出並指派。",
    drills_none: "目前沒有建議：學習者最近一次練習沒有仍念不對的字。", assign_drill: "指派", drill_record: "錄示範並指派",
    drill_stop_send: "停止並指派", drills_all: "顯示全部 {n} 項", drill_assigned: "已指派「{text}」。", no_sentences_therapist: "還沒有句子：在下面新增一個句子並錄製示範。", report: "報告：", report_from: "從", report_to: "到", invited_hint: "治療師邀請你：請登入，或以學習者身分註冊；登入後邀請碼會自動填好。",
  },
  en: {
    notifications: "Notifications", notifications_n: "Notifications ({n} unread)", notif_none: "No notifications yet.",
    notif_analysis: "A learner of yours finished an analysis", notif_review: "Your therapist reviewed your practice",
    notif_reminder: "Time to practise: this week's target is not met yet",
    mail_outbox: "Mail outbox (local)", mail_none: "No mail.",
    forgot_password: "Forgot your password?", reset_sent: "If an account has this email, a reset link was sent to it.",
    reset_title: "Choose a new password", new_password: "New password", reset_submit: "Update password",
    password_reset_done: "Password updated: log in with the new one.", email_verified: "Email address confirmed.",
    app_title: "VocalBorn practice", login: "Log in", register: "Register", logout: "Log out",
    email: "Email", password: "Password", name: "Name", role: "Role",
    role_learner: "Learner", role_therapist: "Therapist", role_admin: "Admin",
    step_sentence: "Choose a sentence", sentence: "Sentence", play_reference: "Play the reference",
    no_sentences: "No sentences yet: a therapist needs to add one with a reference recording.",
    new_sentence: "Add a sentence (therapists)", sentence_text: "Sentence text", share_sentence: "Every learner may practise it (otherwise only your linked learners)",
    create_sentence: "Add sentence", step_record: "Record your attempt", record_start: "Start recording",
    record_stop: "Stop recording",
    record_unsupported: "This browser cannot record here (it needs HTTPS or localhost); choose a file instead.",
    or_choose_file: "or choose a recording", submit: "Analyse", submitting: "Uploading…",
    therapist_note: "Therapists add sentences and reference recordings; learners log in to record and submit.",
    step_progress: "Analysing", step_done: "Analysis finished", status: "Status", eta: "Time left (estimate)", queue_position: "Queue position",
    live: "Live updates", step_result: "Your result", overall: "Overall", completeness: "Completeness", pronunciation: "Pronunciation",
    fluency: "Fluency", rhythm: "Rhythm", pitch_chart: "Pitch: your attempt over the reference",
    legend_reference: "Reference", legend_attempt: "Your attempt", legend_deviation: "Deviating span",
    suggestions: "Suggestions", improvement_areas: "To improve", again: "Practise again",
    footer: "Recordings are kept, encrypted, so that you and your linked therapist can replay them; you can delete any attempt from your history, or your whole account.", none: "(none)",
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
    // the homes (learner.js, therapist.js)
    my_therapist: "My therapist", invite_code_placeholder: "invitation code from your therapist",
    accept_invite: "Accept invitation", unlink: "Unlink", linked_with: "Linked with {name} ({email})",
    not_linked: "No therapist linked yet. Enter the code your therapist gave you:",
    assigned: "Assigned practice", no_assigned: "Your therapist has not assigned any sentence yet.",
    assigned_mark: "assigned", best_last: "best {best} · last {last} · {n} attempts", practise: "Practise this",
    progress_title: "Progress", progress_none: "After your first analysis, your scores are drawn here.",
    progress_facts: "{n} attempts: overall from {first} to {last} lately ({slope} per attempt).",
    improved_chars: "Characters that improved: {chars}", history: "History", no_history: "No analyses yet.",
    more: "More", reviewed: "reviewed", open: "Open", my_learners: "My learners", make_invite: "Create an invitation code",
    invite_valid: "Give this code to a learner; it works once, until {when}.",
    no_learners: "No learners linked yet: create an invitation code for a learner.",
    flag_rule: "Flagged: never practised, no practice for 7 days, or the last 3 overall scores 10+ points below the earlier ones.",
    learner_row: "last practice {last} · {week} this week · mean of last 10: {mean}",
    flag_never_practised: "never practised", flag_inactive: "inactive for 7 days", flag_declining: "scores falling",
    goal_optional: "Weekly goal (optional)", goal_attempts: "attempts a week", goal_minutes_week: "minutes a week", goal_days: "days a week", goal_due: "due by",
    not_judged: "Not judged: another sentence was recorded, so no character is right or wrong and the completeness is not a score.",
    ok_flag: "on track", timeline: "Timeline", assign: "Assign this sentence", remove: "Remove", review: "Review",
    review_title: "Review", attempt: "The learner's attempt", play: "Play", engine_scores: "Engine scores",
    mark_chars: "Tap the characters that sound wrong:", comment: "Comment", save_review: "Save review",
    review_saved: "Review saved (version {v}).", therapist_review: "Therapist's review",
    review_by: "{name}'s scores: {scores}", never: "never", unlinked: "Unlinked.", linked_now: "Linked with {name}.",
    totp_code: "Code (authenticator app or a recovery code)", two_step: "Two-step login", totp_start: "Turn on two-step login",
    totp_scan: "Scan the QR code with an authenticator app (Google Authenticator, 1Password, ...), then type the 6 digits it shows.",
    totp_manual: "Or type the key:", totp_confirm: "Confirm",
    totp_codes_hint: "Recovery codes (each works once, instead of a code when your phone is not at hand). Write them down now; they are not shown again:",
    totp_on: "On: logging in needs the code from your authenticator app.", totp_off: "Off: turn it on, so that logging in needs a code from your authenticator app as well as the password.",
    totp_needed: "Type the code your authenticator app shows.",
    // issue #26: goals, attempts that count
    week_title: "This week", week_attempts: "{n} attempts", week_attempts_one: "1 attempt", week_minutes: "{n} min",
    week_days: "{n} days this week", week_days_one: "1 day this week", week_streak: "streak {n} days",
    week_streak_one: "streak 1 day",
    week_dose: "{dose}% of the goal", due_today_attempts: "{n} more attempts today", due_today_attempts_one: "1 more attempt today",
    due_today_minutes: "{n} more minutes today", due_done: "This week's goal is met", due_on: "due {date}", overdue: "overdue",
    week_none: "Your therapist has not set a weekly goal yet.",
    goal_line: "{done}/{target} attempts this week", goal_minutes: "{done}/{target} min",
    not_counted: "not counted", nc_silent: "Almost no speech was heard in the recording; this attempt does not count",
    nc_too_short: "The recording is too short for the whole sentence; this attempt does not count",
    nc_wrong_sentence: "The recording is not the practised sentence; this attempt does not count",
    delete: "Delete", delete_confirm: "Delete this attempt's recording and result? This cannot be undone.",
    deleted: "The attempt was deleted.",
    dose: "{dose}% of dose", flag_below_dose: "below half the dose", flag_falling_scores: "scores falling",
    flag_no_practice: "no practice for 7 days",
    best_last_one: "best {best} · last {last} · 1 attempt",
    progress_facts_one: "1 attempt: overall {first}.",
    learner_row_one: "last practice {last} · 1 this week · mean of last 10: {mean}",
    // issue #26: audio everywhere, the review's whole result, invitations, sentences
    listen_title: "Listen: the reference and your attempt", play_attempt: "Attempt", play_mine: "My attempt", attempt_short: "Learner",
    tap_to_play: "Tap a character to hear it in the reference, then in your attempt.", pitch_chart_review: "Pitch: the learner's attempt over the reference",
    tap_marks: "Tap a character to mark it as sounding wrong (tap again to unmark).", tap_listens: "A tap plays the character instead of marking it",
    invite_link_hint: "Send the link to the learner, or let them scan the QR code with their phone's camera: the page opens with the code filled in.",
    copy_link: "Copy link", copied: "Link copied.", copy_failed: "Could not copy automatically; copy the selected link by hand.",
    sentences_title: "Sentences and references", reference_how: "The reference: record it here, or choose a recording.", ref_record: "Record the reference",
    ref_record_again: "Record again", reference_file: "or choose a reference recording", need_reference: "Record the reference or choose a recording first.",
    my_sentences: "My sentences", no_my_sentences: "You have not added a sentence yet.", shared_short: "every learner",
    edit: "Edit", save: "Save", cancel: "Cancel", sentence_saved: "Sentence saved.",
    sentence_delete_confirm: "Delete the sentence \u201c{text}\u201d? Its assignments are removed; learners keep their history.", sentence_deleted: "Sentence deleted.",
    progress_axis: "date", drills_title: "Suggested drills", drills_hint: "Minimal pairs from the characters the learner still says wrong (same syllable in another tone; same final, another initial). A new item needs your reference: one click records it, a second sends and assigns it.",
    drills_none: "No suggestions: the learner's last attempts have no character still said wrong.", assign_drill: "Assign", drill_record: "Record reference and assign",
    drill_stop_send: "Stop and assign", drills_all: "Show all {n}", drill_assigned: "Assigned \u201c{text}\u201d.", no_sentences_therapist: "No sentences yet: add one below with its reference recording.", report: "Report:", report_from: "from", report_to: "to", invited_hint: "A therapist invited you: log in, or register as a learner; the invitation code is filled in once you are in.",
  },
};

// A string in the page's language; with a count (vars.n, or vars.attempts / vars.week) of exactly 1
// the key's "_one" form when the language has one ("1 attempt", not "1 attempts").
export function t(key, vars) {
  const lang = T[state.lang] || T["zh-TW"];
  const count = vars && (vars.n ?? vars.attempts ?? vars.week);
  const one = Number(count) === 1 && lang[key + "_one"] ? key + "_one" : key;
  let s = lang[one] || T["zh-TW"][key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
  return s;
}

// A step's name in the page's language, from either language's label.
export function stepName(label) {
  const i = STEPS.findIndex((s) => s[0] === label || s[1] === label);
  if (i < 0) return label;
  return state.lang === "en" ? STEPS[i][1] : STEPS[i][0];
}

// A date and time, short; "never" for none.
export const when = (iso) => (iso ? new Date(iso).toLocaleString(state.lang === "en" ? "en" : "zh-TW", { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" }) : t("never"));

// A score as the page shows it: a whole number, or "–" for none.
export const score = (v) => (v === null || v === undefined ? "–" : String(Math.round(Number(v))));

// The four scores: the field, its label and its colour in the progress chart.
export const SCORE_KEYS = [
  ["overall_score", "overall", "#2a6f97"],
  ["pronunciation_accuracy", "pronunciation", "#e07a1f"],
  ["fluency_score", "fluency", "#2f8f5b"],
  ["rhythm_score", "rhythm", "#8e44ad"],
];

// "Overall 80 · Pronunciation 75 · ..." for a result, a history item or a review.
export const scoreLine = (o) => SCORE_KEYS.map(([k, label]) => `${t(label)} ${score(o[k])}`).join(" · ");
// A history item's scores, with its completeness when the engine measured one (issue #22).
// Not for another sentence than the practised one: its completeness measures nothing.
export const itemLine = (i) => scoreLine(i) + (i.completeness_score === null || i.completeness_score === undefined
  || (i.counted === false && i.not_counted_reason === "wrong_sentence")
  ? "" : ` · ${t("completeness")} ${score(i.completeness_score)}%`);
