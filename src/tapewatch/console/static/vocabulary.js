// The words the console offers in its menus (typologies, severities, statuses, dispositions), as the
// server's code defines them: fetched once at start from vocabulary.json, so the menus cannot drift.

export const vocabulary = { typologies: [], severities: [], alert_statuses: [], dispositions: [], roles: [] };

/** What each disposition means, for the menus; one the console does not know is shown by its name. */
const DISPOSITION_MEANING = {
  true_positive: "manipulation",
  false_positive: "not manipulation",
  benign: "real but explained",
};

export async function loadVocabulary() {
  const response = await fetch("vocabulary.json", { credentials: "same-origin" });
  if (!response.ok) throw new Error(`The console's word lists could not be loaded (${response.status}); menus will be empty.`);
  Object.assign(vocabulary, await response.json());
}

/** (value, label) pairs for a disposition menu, led by an empty "choose…" so nobody closes by accident. */
export function dispositionOptions() {
  return [
    ["", "choose…"],
    ...vocabulary.dispositions.map((value) => [value, `${value.replaceAll("_", " ")}${DISPOSITION_MEANING[value] ? `: ${DISPOSITION_MEANING[value]}` : ""}`]),
  ];
}
