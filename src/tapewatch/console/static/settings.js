// Settings: notification rules (which alerts go where) and the delivery log, under /notifications.
// Everyone may read them (destinations always come back masked); only admins get the controls.
// Editing a rule keeps its destinations unless new ones are typed: the masked ones cannot be sent back as URLs.

import { api, get, itemsOf, patch, post } from "./api.js";
import { h, fill, field, fieldsetForm, select, table, utc, words } from "./dom.js";
import { vocabulary } from "./vocabulary.js";

const RULES = "/notifications/rules";

export async function render(main, ctx, _params, _query, view) {
  const [rules, deliveries] = await Promise.all([get(RULES), get("/notifications/deliveries", { limit: 50 })]);
  if (!view.alive) return;
  const admin = ctx.can("admin");
  const refresh = (notice) => ctx.navigate("#/settings", notice);
  fill(
    main,
    h("h1", {}, "Settings"),
    admin ? null : h("p", { class: "role-note", "data-testid": "role-note" }, `You are a ${ctx.session.role}: you can see the notification rules, but only admins can change them.`),
    h(
      "section",
      { "aria-labelledby": "rules-title" },
      h("h2", { id: "rules-title" }, "Notification rules"),
      h("p", {}, "A rule sends each new alert that matches its filters to its destinations (Apprise URLs, or env:NAME to read one from the server's environment). Empty filters match everything."),
      rulesTable(ctx, itemsOf(rules), admin, refresh),
      admin ? ruleForm(ctx, null, refresh) : null,
    ),
    h("section", { "aria-labelledby": "deliveries-title" }, h("h2", { id: "deliveries-title" }, "Recent deliveries"), deliveriesTable(itemsOf(deliveries))),
  );
}

const list = (values) => (values && values.length ? values.join(", ") : "any");

function rulesTable(ctx, rules, admin, refresh) {
  if (!rules.length) return h("p", { class: "empty", "data-testid": "rules-empty" }, "No rules yet: alerts are shown here, not sent anywhere.");
  const headings = ["Name", "On", "Alerts that match", "Destinations", "Cooldown", admin ? "Actions" : null].filter(Boolean);
  return h(
    "table",
    { class: "rules", "data-testid": "rules" },
    h("thead", {}, h("tr", {}, headings.map((title) => h("th", { scope: "col" }, title)))),
    h(
      "tbody",
      {},
      rules.map((rule) => {
        const row = h(
          "tr",
          { "data-testid": "rule-row", "data-rule-id": rule.id },
          h("td", { "data-testid": "rule-name" }, rule.name),
          h(
            "td",
            {},
            h("input", {
              type: "checkbox",
              checked: rule.enabled,
              disabled: !admin,
              "aria-label": `Rule ${rule.name} enabled`,
              "data-testid": "rule-enabled",
              onchange: async (event) => {
                const on = event.target.checked;
                const done = await ctx.attempt(() => patch(`${RULES}/${rule.id}`, { enabled: on }));
                if (done === undefined) event.target.checked = !on;
                else ctx.notify(`Rule ${rule.name} ${on ? "enabled" : "disabled"}.`);
              },
            }),
          ),
          h("td", {}, `typology ${list(rule.typologies)}; severity ${rule.min_severity} or higher; venue ${list(rule.venues)}; symbol ${list(rule.symbols)}`),
          h("td", { "data-testid": "rule-destinations-shown" }, (rule.destinations || []).map((destination) => h("code", { class: "destination" }, destination))),
          h("td", {}, `${rule.cooldown_s} s`),
          admin
            ? h(
                "td",
                { class: "row-actions" },
                h("button", { type: "button", "data-testid": "rule-test", onclick: () => sendTest(ctx, rule) }, "Send test"),
                h("button", { type: "button", "data-testid": "rule-edit", onclick: () => row.after(h("tr", {}, h("td", { colspan: headings.length }, ruleForm(ctx, rule, refresh)))) }, "Edit"),
                deleteButton(ctx, rule, refresh),
              )
            : null,
        );
        return row;
      }),
    ),
  );
}

async function sendTest(ctx, rule) {
  const results = await ctx.attempt(() => post(`${RULES}/${rule.id}/test`));
  if (!results) return;
  const failed = results.filter((result) => !result.ok);
  if (!results.length) ctx.notify(`Rule ${rule.name} has no destinations.`);
  else if (!failed.length) ctx.notify(`Test message sent to ${results.map((result) => result.destination).join(", ")}.`);
  else ctx.showError(`Test message not delivered: ${failed.map((result) => `${result.destination}: ${result.error}`).join("; ")}`);
}

/**
 * Delete needs a second click, so a slip of the mouse cannot remove a rule. A rule with a delivery log
 * is refused by the server (disabling it keeps the log); a third click then deletes it and its log.
 */
function deleteButton(ctx, rule, refresh) {
  let step = "first";
  const button = h("button", { type: "button", class: "danger", "data-testid": "rule-delete" }, "Delete");
  button.addEventListener("click", async () => {
    if (step === "first") {
      step = "confirm";
      fill(button, `Really delete ${rule.name}?`);
      return;
    }
    const purge = step === "purge";
    const done = await ctx.attempt(() => api("DELETE", `${RULES}/${rule.id}${purge ? "?purge=true" : ""}`));
    if (done !== undefined) refresh(`Rule ${rule.name} deleted.`);
    else if (!purge) {
      step = "purge";
      fill(button, "Delete it and its delivery log");
    }
  });
  return button;
}

const splitList = (text) =>
  String(text || "")
    .split(/[\n,]/)
    .map((part) => part.trim())
    .filter(Boolean);

/** The form to create a rule (rule = null) or edit one (only changed fields are sent). */
function ruleForm(ctx, rule, refresh) {
  const editing = rule !== null;
  const datalist = `rule-typologies-${rule?.id ?? "new"}`;
  const form = fieldsetForm(
    {
      label: editing ? `Edit rule ${rule.name}` : "New rule",
      legend: editing ? `Edit rule ${rule.name}` : "New rule",
      testid: editing ? "rule-edit-form" : "rule-form",
      className: "rule-form",
    },
    field("Name", h("input", { name: "name", required: true, maxlength: 64, value: rule?.name || "", "data-testid": "rule-name-input" })),
    field(
      "Typologies",
      [
        h("input", { name: "typologies", value: (rule?.typologies || []).join(", "), placeholder: "e.g. pump_and_dump, spoofing", list: datalist }),
        h("datalist", { id: datalist }, vocabulary.typologies.map((name) => h("option", { value: name }))),
      ],
      "Comma-separated; empty: any.",
    ),
    field("Lowest severity", select("min_severity", vocabulary.severities.map((s) => [s, s]), rule?.min_severity || "low", { "data-testid": "rule-severity" })),
    field("Venues", h("input", { name: "venues", value: (rule?.venues || []).join(", ") }), "Comma-separated; empty: any."),
    field("Symbols", h("input", { name: "symbols", value: (rule?.symbols || []).join(", "), "data-testid": "rule-symbols" }), "A watchlist, comma-separated; empty: any."),
    field(
      "Destinations",
      h("textarea", { name: "destinations", rows: 2, required: !editing, "data-testid": "rule-destinations", placeholder: "json://host/path, discord://ID/TOKEN or env:NAME" }),
      editing ? "One per line. Leave empty to keep the current ones (shown masked above)." : "One per line: Apprise URLs, or env:NAME.",
    ),
    field("Cooldown (seconds)", h("input", { name: "cooldown_s", type: "number", min: 0, step: "any", value: rule?.cooldown_s ?? 900 }), "At most one message per venue, symbol and typology in this time; 0: none."),
    h("button", { type: "submit", class: "primary", "data-testid": "rule-save" }, editing ? "Save rule" : "Add rule"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = {
      name: String(data.get("name")).trim(),
      typologies: splitList(data.get("typologies")),
      min_severity: data.get("min_severity"),
      venues: splitList(data.get("venues")),
      symbols: splitList(data.get("symbols")),
      destinations: splitList(data.get("destinations")),
      cooldown_s: Number(data.get("cooldown_s")),
    };
    if (editing) {
      for (const [name, value] of Object.entries(body)) if (JSON.stringify(value) === JSON.stringify(rule[name])) delete body[name];
      if (!body.destinations?.length) delete body.destinations;
    }
    const done = await ctx.attempt(() => (editing ? patch(`${RULES}/${rule.id}`, body) : post(RULES, body)));
    if (done !== undefined) refresh(editing ? `Rule ${body.name || rule.name} saved.` : `Rule ${body.name} added.`);
  });
  return form;
}

function deliveriesTable(deliveries) {
  if (!deliveries.length) return h("p", { class: "empty", "data-testid": "deliveries-empty" }, "Nothing has been sent yet.");
  return table(
    { testid: "deliveries", className: "deliveries" },
    ["When", "Rule", "Alert", "Destination", "Result", "Attempts", "Error"],
    deliveries.map((delivery) => [
      utc(delivery.created_at),
      String(delivery.rule || delivery.rule_id),
      h("a", { href: `#/alerts/${encodeURIComponent(delivery.alert_id)}` }, delivery.symbol ? `${words(delivery.typology)} on ${delivery.venue} ${delivery.symbol}` : delivery.alert_id),
      h("code", {}, delivery.destination),
      words(delivery.status),
      h("td", { class: "number" }, String(delivery.attempts ?? "")),
      delivery.error || "",
    ]),
  );
}
