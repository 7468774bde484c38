// Data quality: per venue/symbol, the stretches of trades the lake holds, those the venue could not give,
// and live gaps no refill repaired. An alert decided across a gap names it in its own evidence; this page
// shows where the picture is partial before anyone trusts (or dismisses) an alert there.

import { get, itemsOf } from "./api.js";
import { h, fill, field, formValues, riskHref, table, utc } from "./dom.js";

const SYMBOLS = 500;

export async function render(main, ctx, _params, query, view) {
  const venue = query.get("venue") || "";
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Filter by venue", "data-testid": "quality-filter" },
    field("Venue", h("input", { name: "venue", autocomplete: "off", value: venue, "data-testid": "quality-venue" })),
    h("button", { type: "submit" }, "Show"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = formValues(form);
    ctx.navigate(values.venue ? `#/data-quality?venue=${encodeURIComponent(values.venue)}` : "#/data-quality");
  });
  const listing = h("div", {}, h("p", { class: "loading" }, "Reading the lake's ledgers…"));
  fill(
    main,
    h("h1", {}, "Data quality"),
    h(
      "p",
      { class: "hint" },
      "Trades the lake holds per symbol, stretches the venue could not give, and trades missed live that no refill recovered. " +
        "Alerts decided across one of these gaps say so in their evidence.",
    ),
    form,
    listing,
  );
  const page = await get("/data-quality", { venue, limit: SYMBOLS });
  if (!view.alive) return;
  const symbols = itemsOf(page);
  if (!symbols.length) {
    fill(listing, h("p", { class: "empty", "data-testid": "quality-empty" }, "The lake holds no trade ledgers yet: nothing was ingested or streamed into it."));
    return;
  }
  fill(
    listing,
    legend(),
    table(
      { testid: "quality-table", className: "quality", caption: `${symbols.length} symbol(s), by venue` },
      ["Venue", "Symbol", "Coverage", "Not available from the venue", "Unrepaired live gaps"],
      symbols.map((item) => qualityRow(item)),
    ),
  );
}

function qualityRow(item) {
  // a ledger with nothing in it (an unreadable one is read as empty) has no time line to draw
  const recorded = item.covered.length + item.not_available.length + item.unrepaired.length > 0;
  return [
    item.venue,
    h("a", { href: riskHref(item.venue, item.symbol) }, item.symbol),
    recorded ? h("td", {}, bar(item), h("small", {}, extent(item))) : h("span", { class: "empty" }, "nothing recorded"),
    spans(item.not_available, "quality-not-available"),
    spans(item.unrepaired, "quality-unrepaired"),
  ];
}

/** The symbol's time line: covered stretches, then the gaps drawn over them. Only a picture: the lists
 * beside it say the same in words, so the bar is hidden from screen readers. */
function bar(item) {
  const all = [...item.covered, ...item.not_available, ...item.unrepaired];
  const from = Math.min(...all.map((span) => Date.parse(span.start)));
  const to = Math.max(...all.map((span) => Date.parse(span.end)));
  const width = Math.max(to - from, 1);
  const segment = (span, kind) => {
    const piece = h("span", { class: `segment ${kind}`, title: `${kind.replace("-", " ")}: ${utc(span.start)} – ${utc(span.end)}` });
    piece.style.left = `${((Date.parse(span.start) - from) / width) * 100}%`;
    piece.style.width = `max(2px, ${((Date.parse(span.end) - Date.parse(span.start)) / width) * 100}%)`;
    return piece;
  };
  return h(
    "div",
    { class: "coverage-bar", "aria-hidden": "true", "data-testid": "quality-bar" },
    item.covered.map((span) => segment(span, "covered")),
    item.not_available.map((span) => segment(span, "not-available")),
    item.unrepaired.map((span) => segment(span, "unrepaired")),
  );
}

function extent(item) {
  const all = [...item.covered, ...item.not_available, ...item.unrepaired];
  const first = all.reduce((min, span) => (span.start < min ? span.start : min), all[0].start);
  const last = all.reduce((max, span) => (span.end > max ? span.end : max), all[0].end);
  return `${utc(first)} to ${utc(last)}`;
}

function spans(list, testid) {
  if (!list.length) return h("span", { class: "empty", "data-testid": testid }, "none");
  return h(
    "ul",
    { class: "spans", "data-testid": testid },
    list.map((span) =>
      h("li", {}, `${utc(span.start)} – ${utc(span.end)}`, span.missing_ids ? ` (trade ids ${span.missing_ids[0]}–${span.missing_ids[1]})` : ""),
    ),
  );
}

function legend() {
  return h(
    "p",
    { class: "quality-legend", "aria-hidden": "true" },
    h("span", { class: "segment-key covered" }),
    " fetched ",
    h("span", { class: "segment-key not-available" }),
    " not available ",
    h("span", { class: "segment-key unrepaired" }),
    " unrepaired",
  );
}
