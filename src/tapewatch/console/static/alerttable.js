// The alert table shared by the feed, the risk page and the case page.

import { h, riskHref, severityBadge, statusBadge, utc, words } from "./dom.js";

/** Whether an alert can still join a case (the server checks again). */
export function selectable(alert) {
  return alert.status !== "closed" && !alert.case_id;
}

/**
 * A table of alerts. With `onSelect`, each row gets a checkbox (disabled for alerts that cannot join a case)
 * and `onSelect(id, checked)` is called when one changes.
 */
export function alertTable(alerts, { caption, onSelect = null, selected = new Set(), testid = "alert-table" } = {}) {
  const body = h("tbody", {}, alerts.map((alert) => alertRow(alert, { onSelect, selected })));
  const table = h(
    "table",
    { class: "alerts", "data-testid": testid },
    caption ? h("caption", {}, caption) : null,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        onSelect ? h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Select")) : null,
        h("th", { scope: "col" }, "Detected"),
        h("th", { scope: "col" }, "Severity"),
        h("th", { scope: "col" }, "Typology"),
        h("th", { scope: "col" }, "Venue"),
        h("th", { scope: "col" }, "Symbol"),
        h("th", { scope: "col", class: "number" }, "Score"),
        h("th", { scope: "col" }, "Status"),
      ),
    ),
    body,
  );
  return { table, body };
}

export function alertRow(alert, { onSelect = null, selected = new Set() } = {}) {
  const label = `${words(alert.typology)} on ${alert.venue} ${alert.symbol} at ${utc(alert.detected_at)}`;
  const canSelect = selectable(alert);
  return h(
    "tr",
    { "data-testid": "alert-row", "data-alert-id": alert.id, "data-status": alert.status },
    onSelect
      ? h(
          "td",
          {},
          h("input", {
            type: "checkbox",
            "aria-label": `Select ${label}`,
            "data-testid": "alert-select",
            checked: canSelect && selected.has(alert.id),
            disabled: !canSelect,
            title: canSelect ? null : "Closed alerts and alerts already in a case cannot join a new case",
            onchange: (event) => onSelect(alert.id, event.target.checked),
          }),
        )
      : null,
    h("td", {}, h("time", { datetime: alert.detected_at }, utc(alert.detected_at))),
    h("td", {}, severityBadge(alert.severity)),
    h("td", {}, h("a", { href: `#/alerts/${encodeURIComponent(alert.id)}`, "data-testid": "alert-link", "aria-label": `Open alert: ${label}` }, words(alert.typology))),
    h("td", {}, alert.venue),
    h("td", {}, h("a", { href: riskHref(alert.venue, alert.symbol), title: `Risk page for ${alert.symbol}` }, alert.symbol)),
    h("td", { class: "number" }, typeof alert.score === "number" ? alert.score.toFixed(2) : "—"),
    h("td", {}, statusBadge(alert.status || "new"), alert.case_id ? h("a", { href: `#/cases/${alert.case_id}`, class: "case-link" }, ` case ${alert.case_id}`) : null),
  );
}
