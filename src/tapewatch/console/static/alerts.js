// The alert feed: filters, a page of alerts (newest first), live arrivals at the top, and
// "create case" from the selected alerts.

import { get, itemsOf } from "./api.js";
import { alertRow, alertTable, selectable } from "./alerttable.js";
import { openCaseDialog } from "./casedialog.js";
import { h, fill, field, select, words } from "./dom.js";
import { vocabulary } from "./vocabulary.js";

const PAGE = 50;
const FILTERS = ["typology", "severity", "venue", "symbol", "status", "since", "until"];

export async function render(main, ctx, _params, query, view) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) || ""]));
  const selected = new Set();
  const shown = new Map(); // id → alert, for in-place updates of follow-ups and states
  let nextOffset = null;

  const announcer = h("p", { class: "visually-hidden", "aria-live": "polite", "data-testid": "feed-announcer" });
  const summary = h("p", { class: "summary", "data-testid": "feed-summary" });
  const onSelect = ctx.can("analyst") ? toggle : null;
  const { table, body } = alertTable([], { caption: "Alerts, newest first", onSelect, selected, testid: "alert-feed" });
  const empty = h("p", { class: "empty", "data-testid": "feed-empty", hidden: true }, "No alerts match these filters.");
  const more = h("button", { type: "button", hidden: true, "data-testid": "feed-more", onclick: () => load(nextOffset) }, "Show older alerts");
  const createButton = h(
    "button",
    { type: "button", class: "primary", disabled: true, "data-testid": "create-case", onclick: createCase },
    "Create case from selected",
  );
  const roleNote = ctx.can("analyst")
    ? null
    : h("p", { class: "role-note", "data-testid": "role-note" }, `You are a ${ctx.session.role}: you can read alerts but not work them.`);

  fill(
    main,
    h("h1", {}, "Alerts"),
    filterForm(filters, ctx),
    h("div", { class: "toolbar" }, ctx.can("analyst") ? createButton : null, summary),
    roleNote,
    announcer,
    table,
    empty,
    more,
  );

  function toggle(id, checked) {
    if (checked) selected.add(id);
    else selected.delete(id);
    createButton.disabled = selected.size === 0;
    fill(createButton, selected.size ? `Create case from ${selected.size} selected` : "Create case from selected");
  }

  function createCase() {
    const ids = [...selected].filter((id) => shown.has(id));
    const first = shown.get(ids[0]);
    openCaseDialog(ctx, ids, first ? `${words(first.typology)}: ${first.venue} ${first.symbol}` : "");
  }

  function showSummary() {
    empty.hidden = shown.size > 0;
    table.hidden = shown.size === 0;
    fill(summary, `${shown.size} alert${shown.size === 1 ? "" : "s"} shown${nextOffset !== null ? " (more below)" : ""}.`);
    more.hidden = nextOffset === null;
  }

  async function load(offset = 0) {
    const page = await ctx.attempt(() => get("/alerts", { ...filters, since: toIso(filters.since), until: toIso(filters.until), limit: PAGE, offset }));
    if (!page || !view.alive) return;
    if (offset === 0) {
      body.replaceChildren();
      shown.clear();
    }
    for (const alert of itemsOf(page)) {
      if (shown.has(alert.id)) continue;
      shown.set(alert.id, alert);
      body.append(alertRow(alert, { onSelect, selected }));
    }
    nextOffset = page.next_offset ?? null;
    for (const id of [...selected]) if (!shown.has(id) || !selectable(shown.get(id))) toggle(id, false);
    showSummary();
  }

  function arrived(alert) {
    const existing = body.querySelector(`tr[data-alert-id="${CSS.escape(alert.id)}"]`);
    const merged = { ...(shown.get(alert.id) || {}), ...alert };
    const row = alertRow(merged, { onSelect, selected });
    if (existing) {
      shown.set(alert.id, merged);
      existing.replaceWith(row);
      return;
    }
    if (!matches(merged, filters)) return;
    shown.set(alert.id, merged);
    row.classList.add("arrived");
    row.dataset.live = "true";
    body.prepend(row);
    fill(announcer, `New ${merged.severity} ${words(merged.typology)} alert on ${merged.venue} ${merged.symbol}.`);
    showSummary();
  }

  await load(0);
  const unsubscribe = [ctx.live.on("alert", arrived), ctx.live.on("resync", () => load(0))];
  return () => unsubscribe.forEach((off) => off());
}

function filterForm(filters, ctx) {
  const typologies = h("datalist", { id: "typologies" }, vocabulary.typologies.map((name) => h("option", { value: name })));
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter alerts", "data-testid": "filters" },
    field("Typology", h("input", { name: "typology", list: "typologies", value: filters.typology, autocomplete: "off" })),
    typologies,
    field("Severity", select("severity", [["", "any"], ...vocabulary.severities.map((s) => [s, s])], filters.severity)),
    field("Venue", h("input", { name: "venue", value: filters.venue, autocomplete: "off", "data-testid": "filter-venue" })),
    field("Symbol", h("input", { name: "symbol", value: filters.symbol, autocomplete: "off", placeholder: "e.g. BTC/USDT", "data-testid": "filter-symbol" })),
    field("Status", select("status", [["", "any"], ...vocabulary.alert_statuses.map((s) => [s, words(s)])], filters.status, { "data-testid": "filter-status" })),
    field("Since (UTC)", h("input", { name: "since", type: "datetime-local", value: filters.since })),
    field("Until (UTC)", h("input", { name: "until", type: "datetime-local", value: filters.until })),
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "submit", "data-testid": "filter-apply" }, "Apply filters"),
      h("button", { type: "button", onclick: () => ctx.navigate("#/alerts") }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form).entries()) if (String(value).trim()) query.set(name, String(value).trim());
    ctx.navigate(`#/alerts${query.toString() ? `?${query}` : ""}`);
  });
  return form;
}

/** A datetime-local value ("2024-03-01T04:00"), read as UTC, as an ISO timestamp for the API. */
function toIso(local) {
  if (!local) return "";
  return `${local.length === 16 ? `${local}:00` : local}Z`;
}

/** Whether a pushed alert belongs in the list under the current filters (the same rules the API applies). */
function matches(alert, filters) {
  if (filters.typology && alert.typology !== filters.typology) return false;
  if (filters.severity && alert.severity !== filters.severity) return false;
  if (filters.venue && alert.venue !== filters.venue) return false;
  if (filters.symbol && alert.symbol !== filters.symbol) return false;
  if (filters.status && (alert.status || "new") !== filters.status) return false;
  const detected = Date.parse(alert.detected_at);
  if (filters.since && detected < Date.parse(toIso(filters.since))) return false;
  if (filters.until && detected > Date.parse(toIso(filters.until))) return false;
  return true;
}
