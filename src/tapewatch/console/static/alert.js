// One alert: what, where and when; why it fired in plain words; the market around it;
// what has been done about it; and the actions the user's role allows.

import { get, post } from "./api.js";
import { selectable } from "./alerttable.js";
import { openCaseDialog } from "./casedialog.js";
import { renderChart } from "./chart.js";
import { evidenceSection, flatten, num } from "./evidence.js";
import { h, fill, field, fieldsetForm, formValues, riskHref, select, severityBadge, statusBadge, utc, words } from "./dom.js";
import { dispositionOptions } from "./vocabulary.js";

/** The disposition and reason fields that closing an alert or a case asks for. */
export function closingFields(testid) {
  return [
    field("Disposition", select("disposition", dispositionOptions(), "", { required: true, "data-testid": `${testid}-disposition` })),
    field("Reason", h("textarea", { name: "reason", rows: 2, required: true, maxlength: 10000, "data-testid": `${testid}-reason` })),
  ];
}

export async function render(main, ctx, [id], _query, view) {
  const detail = await get(`/alerts/${encodeURIComponent(id)}`);
  if (!view.alive) return;
  const alert = { ...detail, ...(detail.state || {}) };
  const chart = h("div", { class: "chart", "data-testid": "alert-chart", "aria-label": "Price and volume around the alert", role: "figure" });
  fill(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "#/alerts" }, "← Alerts")),
    h(
      "h1",
      { "data-testid": "alert-title" },
      severityBadge(alert.severity),
      ` ${words(alert.typology)} on ${alert.venue} `,
      h("a", { href: riskHref(alert.venue, alert.symbol) }, alert.symbol),
    ),
    facts(alert),
    evidenceSection(alert),
    h("section", { "aria-labelledby": "chart-title" }, h("h2", { id: "chart-title" }, "Market around the alert"), chart),
    actions(alert, ctx),
    history(detail.history || [], alert),
  );
  renderChart(chart, alert, view);
  // Plotly keeps a resize listener per plot: let it go with the page
  return () => chart.querySelectorAll(".js-plotly-plot").forEach((plot) => window.Plotly?.purge(plot));
}

function facts(alert) {
  const rows = [
    ["Status", statusBadge(alert.status || "new")],
    ["Detected at", utc(alert.detected_at)],
    ["Window", `${utc(alert.start)} to ${utc(alert.end)}`],
    ["Score", typeof alert.score === "number" ? `${num(alert.score)} (${alert.severity})` : "—"],
    ["Detector", alert.detector],
    ["Alert id", h("code", {}, alert.id)],
  ];
  if (alert.case_id) rows.push(["Case", h("a", { href: `#/cases/${alert.case_id}`, "data-testid": "alert-case-link" }, `Case ${alert.case_id}`)]);
  if (alert.disposition) rows.push(["Disposition", h("span", { "data-testid": "alert-disposition" }, words(alert.disposition))]);
  if (alert.reason) rows.push(["Reason", alert.reason]);
  return h("dl", { class: "facts", "data-testid": "alert-facts" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function actions(alert, ctx) {
  const allowed = ctx.can("analyst");
  const status = alert.status || "new";
  const section = h("section", { class: "actions", "aria-labelledby": "actions-title", "data-testid": "alert-actions" }, h("h2", { id: "actions-title" }, "Work this alert"));
  const note = allowed
    ? null
    : h("p", { class: "role-note", id: "role-note", "data-testid": "role-note" }, `You are logged in as a ${ctx.session.role}: you can read alerts, but acknowledging and closing them needs the analyst role.`);
  section.append(note || "");

  if (status === "closed") {
    section.append(h("p", {}, `Closed as ${words(alert.disposition)}${alert.reason ? `: ${alert.reason}` : "."}`));
    return section;
  }
  if (status === "in_case") {
    section.append(h("p", {}, "This alert is in ", h("a", { href: `#/cases/${alert.case_id}` }, `case ${alert.case_id}`), "; it is closed with the case."));
    return section;
  }
  const disabled = !allowed;
  const describedBy = allowed ? null : "role-note";

  if (status === "new") {
    section.append(
      h(
        "button",
        {
          type: "button",
          "data-testid": "acknowledge",
          disabled,
          "aria-describedby": describedBy,
          onclick: () => act(ctx, alert, "acknowledge", {}, "Alert acknowledged."),
        },
        "Acknowledge",
      ),
    );
  }
  if (selectable(alert)) {
    section.append(
      h(
        "button",
        {
          type: "button",
          "data-testid": "alert-create-case",
          disabled,
          "aria-describedby": describedBy,
          onclick: () => openCaseDialog(ctx, [alert.id], `${words(alert.typology)}: ${alert.venue} ${alert.symbol}`),
        },
        "Create case",
      ),
    );
  }
  const form = fieldsetForm(
    { label: "Close this alert", legend: "Close this alert", testid: "close-form", disabled, className: "close-form" },
    closingFields("close"),
    h("button", { type: "submit", "data-testid": "close-submit", "aria-describedby": describedBy }, "Close alert"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = formValues(form);
    act(ctx, alert, "close", { disposition: values.disposition, reason: values.reason || "" }, "Alert closed.");
  });
  section.append(form);
  return section;
}

async function act(ctx, alert, action, body, done) {
  const result = await ctx.attempt(() => post(`/alerts/${encodeURIComponent(alert.id)}/${action}`, body));
  if (result !== undefined) ctx.navigate(`#/alerts/${encodeURIComponent(alert.id)}`, done);
}

/** An audit entry as a sentence ("ana closed it as benign: …"), falling back to the raw action and details. */
function describeEntry(entry) {
  const details = entry.details || {};
  if (entry.action === "alert.acknowledge") return `${entry.actor} acknowledged it`;
  if (entry.action === "alert.close") return `${entry.actor} closed it as ${words(details.disposition)}: ${details.reason}`;
  const extra = Object.keys(details).length ? ` (${flatten(details).map(([key, value]) => `${key} ${value}`).join("; ")})` : "";
  return `${entry.actor}: ${words(entry.action)}${extra}`;
}

function history(entries, alert) {
  let empty = "Nobody has acted on this alert yet.";
  if (alert.case_id) empty = `Nothing recorded on the alert itself; it is worked in case ${alert.case_id}.`;
  return h(
    "section",
    { "aria-labelledby": "history-title", "data-testid": "alert-history" },
    h("h2", { id: "history-title" }, "History"),
    entries.length
      ? h(
          "ol",
          { class: "history" },
          entries.map((entry) => h("li", {}, h("time", { datetime: entry.at }, utc(entry.at)), " ", describeEntry(entry))),
        )
      : h("p", {}, empty),
  );
}
