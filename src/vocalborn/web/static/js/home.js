// Which home a login sees: the learner's (learner.js) or the therapist's (therapist.js); admins
// see neither, only the practice view.
import { $ } from "./dom.js";
import { enterLearnerHome, renderLearnerHome } from "./learner.js";
import { loadSentences } from "./practice.js";
import { state } from "./state.js";
import { enterTherapistHome, renderTherapistHome } from "./therapist.js";

export async function enterHome() {
  const role = state.me.role;
  $("learner-home").hidden = role !== "learner";
  $("learner-more").hidden = role !== "learner";
  $("therapist-home").hidden = role !== "therapist";
  $("timeline-card").hidden = true;
  $("review-card").hidden = true;
  if (role === "learner") await enterLearnerHome();
  if (role === "therapist") await enterTherapistHome();
}

// Again, in the page's language.
export function renderHome() {
  if (!state.me) return;
  if (state.me.role === "learner") renderLearnerHome();
  if (state.me.role === "therapist") renderTherapistHome();
  if (state.sentences) {
    const current = $("sentence").value;
    loadSentences(current).catch(() => {});
  }
}
