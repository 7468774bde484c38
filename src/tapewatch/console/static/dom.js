// Small DOM helpers. Everything the server sends is put on the page as text, never as HTML,
// so a symbol or a comment can never inject markup.

/**
 * Create an element: h("a", {href: "#/x", class: "link", onclick: fn, "data-testid": "t"}, "text", child).
 * `null`, `undefined` and `false` children are skipped; arrays are flattened.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (name === "value") {
      element.value = value;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's content. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A form's fields as an object of trimmed strings (empty fields left out). */
export function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form).entries()) {
    const text = String(value).trim();
    if (text) values[name] = text;
  }
  return values;
}

/** A label wrapping its control, so the pair is always associated for screen readers. */
export function field(labelText, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, labelText), control, hint ? h("small", {}, hint) : null);
}

/** A form whose controls share one fieldset, disabled as a whole when the user's role may not use them. */
export function fieldsetForm({ label, legend, testid, disabled = false, className = null }, ...controls) {
  return h("form", { class: className, "aria-label": label, "data-testid": testid }, h("fieldset", { disabled }, h("legend", {}, legend), controls));
}

/** A table from column headings and rows of cells (text or elements). */
export function table({ testid = null, caption = null, className = null }, headings, rows) {
  return h(
    "table",
    { class: className, "data-testid": testid },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, headings.map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => (cell instanceof Node && cell.tagName === "TD" ? cell : h("td", {}, cell)))))),
  );
}

/** A <select> with (value, text) options; `selected` pre-selects one. */
export function select(name, options, selected = "", attrs = {}) {
  return h(
    "select",
    { name, ...attrs },
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
}

/** A timestamp as "2024-03-01 04:00:03 UTC" (the whole console works in UTC, like the alerts). */
export function utc(value) {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "").replace("Z", "") + " UTC";
}

/** A coloured severity label; the word itself carries the meaning, the colour only repeats it. */
export function severityBadge(severity) {
  return h("span", { class: `badge severity-${severity}`, "data-testid": "severity" }, severity);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, "data-testid": "status" }, (status || "").replace("_", " "));
}

/** Human words for identifiers: "true_positive" → "true positive". */
export function words(identifier) {
  return String(identifier ?? "").replaceAll("_", " ");
}

/** Link to a symbol's risk page (symbols contain "/", so both parts are encoded). */
export function riskHref(venue, symbol) {
  return `#/risk/${encodeURIComponent(venue)}/${encodeURIComponent(symbol)}`;
}
