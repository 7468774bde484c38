// Symbol risk: the highest scores now, then one symbol's 1–100 score with its reasons, its recent alerts,
// how many of each kind, and the worst severity.

import { get, itemsOf } from "./api.js";
import { alertTable } from "./alerttable.js";
import { num } from "./evidence.js";
import { h, fill, field, formValues, riskHref, severityBadge, table, utc, words } from "./dom.js";
import { vocabulary } from "./vocabulary.js";

export async function renderIndex(main, ctx, _params, query, view) {
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Look up a symbol", "data-testid": "risk-lookup" },
    field("Venue", h("input", { name: "venue", required: true, autocomplete: "off", value: query.get("venue") || "", "data-testid": "risk-venue" })),
    field("Symbol", h("input", { name: "symbol", required: true, autocomplete: "off", placeholder: "e.g. BTC/USDT", "data-testid": "risk-symbol" })),
    h("button", { type: "submit" }, "Show risk"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = formValues(form);
    ctx.navigate(riskHref(values.venue, values.symbol));
  });
  const listing = h("div", {}, h("p", { class: "loading" }, "Loading instruments…"));
  const alerted = h("div", {}, h("p", { class: "loading" }, "Loading recent alerts…"));
  const ranked = h("div", {}, h("p", { class: "loading" }, "Scoring symbols…"));
  fill(
    main,
    h("h1", {}, "Symbol risk"),
    form,
    h("h2", {}, "Highest risk now"),
    ranked,
    h("h2", {}, "Symbols with recent alerts"),
    alerted,
    h("h2", {}, "Instruments"),
    listing,
  );
  highestRisk(ranked, ctx, view);
  recentSymbols(alerted, ctx, view);

  const instruments = await ctx.attempt(async () => itemsOf(await get("/instruments", { limit: 500 })));
  if (!view.alive) return;
  if (!instruments) fill(listing);
  else if (!instruments.length) fill(listing, h("p", { class: "empty" }, "No instruments are registered yet; look a symbol up by venue and name above."));
  else fill(listing, instrumentTable(instruments));
}

/** The risk table (scores 1–100 over the last week), highest first, each with its main reason. */
async function highestRisk(container, ctx, view) {
  const scores = await ctx.attempt(() => get("/risk", { limit: 20 }));
  if (!view.alive) return;
  if (!scores) fill(container);
  else if (!scores.length) fill(container, h("p", { class: "empty" }, "No symbol has alerts or a listing yet."));
  else
    fill(
      container,
      table(
        { testid: "risk-table", className: "symbols" },
        ["Venue", "Symbol", "Score", "Main reason"],
        scores.map((row) => [
          row.venue,
          h("a", { href: riskHref(row.venue, row.symbol) }, row.symbol),
          h("td", { class: "number" }, num(row.score)),
          row.reasons.length ? row.reasons[0].text : "–",
        ]),
      ),
    );
}

function instrumentTable(instruments) {
  return table(
    { testid: "instruments", className: "instruments" },
    ["Venue", "Symbol", "Name", "Class", "Status", "Last seen"],
    instruments.map((item) => [
      item.venue,
      h("a", { href: riskHref(item.venue, item.symbol) }, item.symbol),
      item.name || "",
      item.asset_class || "",
      item.status || "",
      utc(item.last_seen),
    ]),
  );
}

const rank = (severity) => vocabulary.severities.indexOf(severity);
const RECENT_ALERTS = 500;

/** The symbols among the latest alerts, worst severity first (older than the score's week, too). */
async function recentSymbols(container, ctx, view) {
  const page = await ctx.attempt(() => get("/alerts", { limit: RECENT_ALERTS }));
  if (!view.alive) return;
  if (!page) {
    fill(container);
    return;
  }
  const bySymbol = new Map();
  for (const alert of itemsOf(page)) {
    const key = `${alert.venue}\u0000${alert.symbol}`;
    const seen = bySymbol.get(key) || { venue: alert.venue, symbol: alert.symbol, count: 0, worst: "low", last: alert.detected_at };
    seen.count += 1;
    if (rank(alert.severity) > rank(seen.worst)) seen.worst = alert.severity;
    if (alert.detected_at > seen.last) seen.last = alert.detected_at;
    bySymbol.set(key, seen);
  }
  const symbols = [...bySymbol.values()].sort(
    (a, b) => rank(b.worst) - rank(a.worst) || b.count - a.count || (a.last < b.last ? 1 : -1),
  );
  if (!symbols.length) {
    fill(container, h("p", { class: "empty" }, "No alerts yet."));
    return;
  }
  fill(
    container,
    table(
      { testid: "risk-symbols", className: "symbols", caption: `From the latest ${Math.min(RECENT_ALERTS, itemsOf(page).length)} alerts` },
      ["Venue", "Symbol", "Worst severity", "Alerts", "Last detected"],
      symbols.map((item) => [
        item.venue,
        h("a", { href: riskHref(item.venue, item.symbol) }, item.symbol),
        severityBadge(item.worst),
        h("td", { class: "number" }, num(item.count)),
        utc(item.last),
      ]),
    ),
  );
}

export async function renderSymbol(main, ctx, [venue, symbol], _query, view) {
  const risk = await get(`/risk/${encodeURIComponent(venue)}/${encodeURIComponent(symbol)}`);
  if (!view.alive) return;
  const recent = risk.recent || [];
  const counts = risk.counts || [];
  fill(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "#/risk" }, "← Symbol risk")),
    h("h1", { "data-testid": "risk-title" }, `${symbol} on ${venue}`),
    h(
      "dl",
      { class: "facts", "data-testid": "risk-facts" },
      h("dt", {}, "Alerts"),
      h("dd", { "data-testid": "risk-alerts-count" }, `${num(risk.alerts ?? 0)} (${num(risk.open_alerts ?? 0)} not closed)`),
      h("dt", {}, "Highest severity"),
      h("dd", { "data-testid": "risk-highest" }, risk.highest_severity ? severityBadge(risk.highest_severity) : "no alerts"),
      h("dt", {}, "Risk score"),
      h("dd", { "data-testid": "risk-score" }, `${num(risk.score)} of 100`),
      h("dt", {}, "Period"),
      h("dd", {}, risk.since ? `since ${utc(risk.since)}` : "all stored alerts"),
    ),
    (risk.reasons || []).length
      ? table(
          { testid: "risk-reasons", className: "counts", caption: "Why: each reason and the score points it accounts for" },
          ["Reason", "Points"],
          risk.reasons.map((reason) => [reason.text, h("td", { class: "number" }, reason.contribution.toFixed(1))]),
        )
      : h("p", { class: "empty", "data-testid": "risk-reasons" }, "Nothing against this symbol in the last week."),
    counts.length
      ? table(
          { testid: "risk-counts", className: "counts", caption: "Alerts by typology and severity" },
          ["Typology", "Severity", "Alerts"],
          counts.map((count) => [words(count.typology), severityBadge(count.severity), h("td", { class: "number" }, num(count.alerts))]),
        )
      : null,
    h("h2", {}, "Recent alerts"),
    recent.length ? alertTable(recent, { testid: "risk-alerts" }).table : h("p", { class: "empty" }, "No alerts on this symbol."),
    h("p", {}, h("a", { href: `#/alerts?venue=${encodeURIComponent(venue)}&symbol=${encodeURIComponent(symbol)}` }, "All alerts on this symbol")),
  );
}
