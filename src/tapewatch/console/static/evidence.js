// An alert's evidence and follow-up in plain words, for the detectors we know; every number is
// also listed as is (nothing is hidden behind the sentences), and unknown detectors get the list only.

import { h, utc, words } from "./dom.js";

/** A number as people read it: prices keep their significant digits, big counts get separators. */
export function num(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value ?? "—");
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return String(Number(value.toPrecision(4))); // four significant digits, no trailing zeros
}

export const pct = (share) => (typeof share === "number" ? `${num(share * 100)} %` : "—");

const EXPLAIN = {
  pump_onset: pumpOnset,
  kamps_kleinberg: kampsKleinberg,
};

/** Sentences explaining why the alert fired (empty when the detector is not one we know). */
export function explain(alert) {
  const sentences = [];
  const explainer = EXPLAIN[alert.detector];
  const evidence = alert.evidence || {};
  if (explainer) {
    try {
      sentences.push(...explainer(evidence));
    } catch {
      // evidence of an older or newer shape: the raw numbers below still show everything
    }
  }
  return sentences.filter(Boolean);
}

function pumpOnset(e) {
  const window = `${num(e.window_s)} s`;
  const out = [];
  if (e.orders) {
    out.push(
      `${num(e.orders.now)} taker orders arrived in ${window}, ${num(e.order_rate_ratio)}× the usual rate for this symbol ` +
        `(about ${num(e.orders.baseline)} expected in ${window}, judging by the previous ${num(e.baseline_h)} h).`,
    );
  }
  if (e.buy_share) out.push(`${pct(e.buy_share.now)} of those orders were buys (the rule needs at least ${pct(e.buy_share.threshold)}).`);
  if (e.price) {
    out.push(
      `They lifted the price to ${num(e.price.now_max)}, ${pct(e.price.rise)} above its ${num(e.baseline_h)}-hour average of ${num(e.price.baseline_mean)}.`,
    );
  }
  if (e.trades && e.rush_orders) {
    out.push(`${num(e.trades.now)} trades in the window; ${num(e.rush_orders.now)} buy orders swept several price levels at once (rush orders).`);
  }
  if (e.rule === "crowd") out.push("It fired on the crowd rule: many orders lifting the price moderately.");
  if (e.rule === "big_move") out.push("It fired on the big-move rule: fewer orders lifting the price a lot.");
  return out;
}

function kampsKleinberg(e) {
  return [
    `The ${e.interval} candle's high of ${num(e.high)} was ${num(e.price_ratio)}× the mean close of the previous ${num(e.window_candles)} candles (${num(e.mean_close)}); the threshold is ${num(e.thresholds?.price)}×.`,
    `Its volume of ${num(e.volume)} was ${num(e.volume_ratio)}× their mean volume (${num(e.mean_volume)}); the threshold is ${num(e.thresholds?.volume)}×.`,
  ];
}

/** What was learnt after the alert (so far: whether a pump was dumped), in words. */
export function explainFollowup(followup) {
  const dump = followup?.dump;
  if (!dump) return [];
  if (dump.status === "confirmed") {
    return [
      `The dump came: the price peaked at ${num(dump.peak_price)} (${pct(dump.peak_gain)} above the baseline) at ${utc(dump.peak_at)} ` +
        `and fell back to ${num(dump.dump_level)} or below at ${utc(dump.confirmed_at)}.`,
    ];
  }
  if (dump.status === "not_confirmed") {
    return [`No dump within ${num(dump.window_min)} min: the price peaked at ${num(dump.peak_price)} and did not fall back to ${num(dump.dump_level)}.`];
  }
  if (dump.status === "pending") return [`Still watching for the dump (up to ${num(dump.window_min)} min after detection).`];
  return [];
}

/** Every number of a nested evidence object as (path, value) rows. */
export function flatten(object, prefix = "") {
  const rows = [];
  for (const [key, value] of Object.entries(object || {})) {
    const path = prefix ? `${prefix} › ${words(key)}` : words(key);
    if (value && typeof value === "object" && !Array.isArray(value)) rows.push(...flatten(value, path));
    else if (Array.isArray(value) && value.some((item) => item && typeof item === "object"))
      value.forEach((item, index) => rows.push(...flatten(item, `${path} ${index + 1}`)));
    else rows.push([path, Array.isArray(value) ? value.join(", ") : typeof value === "number" ? num(value) : String(value)]);
  }
  return rows;
}

/** The known gaps in the data the alert was decided on (`evidence.data_gaps`), in words: the picture
 * was partial, which can make an alert wrong either way. */
function dataGaps(gaps) {
  if (!Array.isArray(gaps) || !gaps.length) return null;
  return h(
    "div",
    { class: "data-gaps", "data-testid": "evidence-data-gaps" },
    h("p", {}, `Decided across ${gaps.length} known gap(s) in this symbol's trades: the detector saw only part of the market here.`),
    h(
      "ul",
      {},
      gaps.map((gap) =>
        h("li", {}, `${utc(gap.start)} – ${utc(gap.end)}: ${gap.state}`, gap.missing_ids ? ` (trade ids ${gap.missing_ids[0]}–${gap.missing_ids[1]})` : ""),
      ),
    ),
  );
}

/** The evidence section: sentences, then all the numbers in a table. */
export function evidenceSection(alert) {
  const sentences = explain(alert);
  const followup = explainFollowup(alert.followup);
  const rows = flatten({ evidence: alert.evidence, followup: alert.followup });
  return h(
    "section",
    { "aria-labelledby": "evidence-title", "data-testid": "evidence" },
    h("h2", { id: "evidence-title" }, "Why it fired"),
    dataGaps(alert.evidence?.data_gaps),
    sentences.length
      ? h("ul", { class: "sentences", "data-testid": "evidence-sentences" }, sentences.map((text) => h("li", {}, text)))
      : h("p", {}, `The ${alert.detector} detector gives its reasons as numbers only; they are listed below.`),
    followup.length ? h("div", {}, h("h3", {}, "Afterwards"), h("ul", { class: "sentences", "data-testid": "followup-sentences" }, followup.map((text) => h("li", {}, text)))) : null,
    rows.length
      ? h(
          "details",
          {},
          h("summary", {}, "All the numbers"),
          h("table", { class: "kv" }, h("tbody", {}, rows.map(([key, value]) => h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, value))))),
        )
      : null,
  );
}
