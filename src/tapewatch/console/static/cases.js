// Cases: the board (open and closed columns) and one case (its alerts, comments, assignee, closing).

import { get, itemsOf, post } from "./api.js";
import { closingFields } from "./alert.js";
import { alertTable } from "./alerttable.js";
import { h, fill, field, fieldsetForm, formValues, utc, words } from "./dom.js";

export async function renderBoard(main, ctx, _params, _query, view) {
  const [open, closed] = await Promise.all([get("/cases", { status: "open", limit: 200 }), get("/cases", { status: "closed", limit: 50 })]);
  if (!view.alive) return;
  // an API that ignores the status filter still lands each case in the right column
  const all = new Map([...itemsOf(open), ...itemsOf(closed)].map((item) => [item.id, item]));
  const column = (status, title) => {
    const cases = [...all.values()].filter((item) => item.status === status);
    return h(
      "section",
      { class: "column", "aria-labelledby": `column-${status}`, "data-testid": `cases-${status}` },
      h("h2", { id: `column-${status}` }, `${title} (${cases.length})`),
      cases.length ? h("ul", { class: "cards" }, cases.map(card)) : h("p", { class: "empty" }, status === "open" ? "No open cases." : "No closed cases yet."),
    );
  };
  fill(
    main,
    h("h1", {}, "Cases"),
    h("p", {}, "Create a case from the ", h("a", { href: "#/alerts" }, "alerts page"), " by selecting alerts."),
    h("div", { class: "board" }, column("open", "Open"), column("closed", "Closed")),
  );
}

function card(item) {
  return h(
    "li",
    { class: "card", "data-testid": "case-card", "data-case-id": item.id },
    h("a", { href: `#/cases/${item.id}`, class: "card-title" }, `#${item.id} ${item.title}`),
    h(
      "p",
      { class: "card-meta" },
      `${item.alert_count ?? item.alert_ids?.length ?? 0} alert(s) · `,
      item.assignee ? `assigned to ${item.assignee}` : "unassigned",
      item.status === "closed" ? ` · ${words(item.disposition)}` : "",
    ),
    h("p", { class: "card-meta" }, `updated ${utc(item.updated_at)}`),
  );
}

export async function renderCase(main, ctx, [id], _query, view) {
  const item = await get(`/cases/${id}`);
  if (!view.alive) return;
  const alertIds = item.alert_ids || [];
  const alerts = (await Promise.all(alertIds.map((alertId) => get(`/alerts/${encodeURIComponent(alertId)}`).catch(() => null)))).filter(Boolean);
  if (!view.alive) return;
  const open = item.status === "open";
  const allowed = ctx.can("analyst");
  const refresh = (notice) => ctx.navigate(`#/cases/${id}`, notice);

  fill(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "#/cases" }, "← Cases")),
    h("h1", { "data-testid": "case-title" }, `Case #${item.id}: ${item.title}`),
    h(
      "dl",
      { class: "facts", "data-testid": "case-facts" },
      h("dt", {}, "Status"),
      h("dd", { "data-testid": "case-status" }, item.status),
      h("dt", {}, "Assignee"),
      h("dd", { "data-testid": "case-assignee-now" }, item.assignee || "nobody"),
      h("dt", {}, "Opened"),
      h("dd", {}, `${utc(item.created_at)} by ${item.created_by}`),
      item.status === "closed" ? [h("dt", {}, "Closed"), h("dd", {}, `${utc(item.closed_at)} by ${item.closed_by}`)] : null,
      item.disposition ? [h("dt", {}, "Disposition"), h("dd", { "data-testid": "case-disposition" }, words(item.disposition))] : null,
      item.reason ? [h("dt", {}, "Reason"), h("dd", {}, item.reason)] : null,
    ),
    allowed ? null : h("p", { class: "role-note", "data-testid": "role-note" }, `You are a ${ctx.session.role}: you can read cases but not change them.`),
    alerts.length ? alertTable(alerts, { caption: "Alerts in this case", testid: "case-alerts" }).table : h("p", {}, "This case has no alerts."),
    open ? workForms(ctx, item, allowed, refresh) : null,
    comments(ctx, item, allowed, refresh),
  );
}

function workForms(ctx, item, allowed, refresh) {
  const assign = fieldsetForm(
    { label: "Assign this case", legend: "Assign", testid: "assign-form", disabled: !allowed },
    field("User name", h("input", { name: "assignee", value: item.assignee || "", autocomplete: "off", "data-testid": "assign-name" }), "Empty: unassigned."),
    h("button", { type: "submit", "data-testid": "assign-submit" }, "Assign"),
  );
  assign.addEventListener("submit", async (event) => {
    event.preventDefault();
    const assignee = formValues(assign).assignee || null;
    const done = await ctx.attempt(() => post(`/cases/${item.id}/assign`, { assignee }));
    if (done !== undefined) refresh(assignee ? `Case assigned to ${assignee}.` : "Case unassigned.");
  });

  const close = fieldsetForm(
    { label: "Close this case", legend: "Close the case", testid: "case-close-form", disabled: !allowed },
    h("p", { class: "hint" }, "Closing the case closes all its alerts with the same disposition and reason."),
    closingFields("case-close"),
    h("button", { type: "submit", "data-testid": "case-close-submit" }, "Close case"),
  );
  close.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(close);
    const done = await ctx.attempt(() => post(`/cases/${item.id}/close`, { disposition: values.disposition, reason: values.reason || "" }));
    if (done !== undefined) refresh(`Case closed as ${words(values.disposition)}.`);
  });
  return h("div", { class: "work-forms" }, assign, close);
}

function comments(ctx, item, allowed, refresh) {
  const list = item.comments || [];
  const form = fieldsetForm(
    { label: "Add a comment", legend: "Add a comment", testid: "comment-form", disabled: !allowed },
    field("Comment", h("textarea", { name: "body", rows: 3, required: true, maxlength: 10000, "data-testid": "comment-body" })),
    h("button", { type: "submit", "data-testid": "comment-submit" }, "Add comment"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = formValues(form).body || "";
    const done = await ctx.attempt(() => post(`/cases/${item.id}/comments`, { body }));
    if (done !== undefined) refresh("Comment added.");
  });
  return h(
    "section",
    { "aria-labelledby": "comments-title", "data-testid": "case-comments" },
    h("h2", { id: "comments-title" }, `Comments (${list.length})`),
    list.length
      ? h(
          "ol",
          { class: "comments" },
          list.map((comment) =>
            h("li", { "data-testid": "comment" }, h("p", { class: "comment-meta" }, `${comment.author}, ${utc(comment.created_at)}`), h("p", { class: "comment-body" }, comment.body)),
          ),
        )
      : h("p", {}, "No comments yet."),
    form,
  );
}
