// Grouping alerts into a case: a modal dialog to open a new case with them (title, optional assignee)
// or to add them to a case that is already open.

import { get, itemsOf, post } from "./api.js";
import { h, fill, field, fieldsetForm, formValues, select } from "./dom.js";

/** Open the dialog for these alert ids; on success, go to the case. */
export function openCaseDialog(ctx, alertIds, suggestedTitle = "") {
  const count = alertIds.length === 1 ? "1 alert" : `${alertIds.length} alerts`;
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "case-dialog-error", hidden: true });

  const create = fieldsetForm(
    { label: "New case", legend: "A new case", testid: "case-form" },
    field("Title", h("input", { name: "title", required: true, maxlength: 200, value: suggestedTitle, "data-testid": "case-title" })),
    field("Assignee (optional)", h("input", { name: "assignee", autocomplete: "off", "data-testid": "case-assignee" }), "A user name; leave empty to assign later."),
    h("button", { type: "submit", class: "primary", "data-testid": "case-create" }, "Create case"),
  );
  const existing = h("div", { "data-testid": "case-existing" }, h("p", { class: "loading" }, "Loading open cases…"));
  const dialog = h(
    "dialog",
    { "aria-labelledby": "case-dialog-title", "data-testid": "case-dialog" },
    h("h2", { id: "case-dialog-title" }, `Group ${count} into a case`),
    create,
    existing,
    error,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel")),
  );

  /** Send, then go to the case; a refusal (a closed alert, an unknown user…) stays in the dialog. */
  async function submit(form, send) {
    const button = form.querySelector("[type=submit]");
    button.disabled = true;
    error.hidden = true;
    try {
      const [caseId, notice] = await send(formValues(form));
      dialog.close();
      ctx.navigate(`#/cases/${caseId}`, notice);
    } catch (failure) {
      fill(error, failure.message);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  create.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(create, async (values) => {
      const created = await post("/cases", { title: values.title || "", alert_ids: alertIds, assignee: values.assignee || null });
      return [created.id, `Case ${created.id} created.`];
    });
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  listOpenCases(existing, alertIds, submit);
}

async function listOpenCases(container, alertIds, submit) {
  let open;
  try {
    open = itemsOf(await get("/cases", { status: "open", limit: 200 }));
  } catch (failure) {
    fill(container, h("p", { class: "form-error" }, `Open cases could not be listed: ${failure.message}`));
    return;
  }
  if (!open.length) {
    fill(container);
    return;
  }
  const form = fieldsetForm(
    { label: "Add to an open case", legend: "Or an open case", testid: "case-add-form" },
    field("Case", select("case_id", open.map((item) => [String(item.id), `#${item.id} ${item.title}`]), "", { "data-testid": "case-add-choice" })),
    h("button", { type: "submit", "data-testid": "case-add" }, "Add to case"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(form, async (values) => {
      await post(`/cases/${values.case_id}/alerts`, { alert_ids: alertIds });
      return [values.case_id, `Added to case ${values.case_id}.`];
    });
  });
  fill(container, form);
}
