// The price/volume chart of an alert's window: 1-minute candles, the trades as dots, volume bars,
// the alert span shaded and the detection moment marked. Plotly is loaded only when a chart is drawn
// (it is large), from the copy inside the plotly Python package that the server serves.

import { get } from "./api.js";
import { h, fill, utc } from "./dom.js";

const PLOTLY_URL = "vendor/plotly.min.js";
const COLOURS = { up: "#1a7f37", down: "#c62828", buy: "#1a7f37", sell: "#c62828", window: "#f59e0b", detected: "#b45309", volume: "#64748b" };
let plotlyLoading = null;

function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = h("script", { src: PLOTLY_URL });
      script.addEventListener("load", () => resolve(window.Plotly));
      script.addEventListener("error", () => {
        plotlyLoading = null;
        reject(new Error("The chart library (plotly.js) could not be loaded from the server."));
      });
      document.head.append(script);
    });
  }
  return plotlyLoading;
}

/** Rows from either a list of objects or columns ({ts: [...], price: [...]}). */
function rows(data) {
  if (!data) return [];
  if (Array.isArray(data)) return data;
  const names = Object.keys(data);
  const length = names.length ? data[names[0]].length : 0;
  return Array.from({ length }, (_, index) => Object.fromEntries(names.map((name) => [name, data[name][index]])));
}

const timeOf = (row) => row.ts ?? row.time ?? row.start ?? row.t ?? row.timestamp;

/** Plotly reads dates without a zone as they are: give it UTC wall-clock time. */
function plotTime(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString().slice(0, 23).replace("T", " ");
}

/** Draw the chart for `alert` into `container`; shows an empty state or an error instead when it cannot. */
export async function renderChart(container, alert, view) {
  container.dataset.state = "loading";
  fill(container, h("p", { class: "loading" }, "Loading market data…"));
  let market;
  try {
    market = await get(`/alerts/${encodeURIComponent(alert.id)}/market`);
  } catch (error) {
    container.dataset.state = "error";
    fill(container, h("p", { class: "form-error", role: "alert" }, `Market data could not be loaded: ${error.message}`));
    return;
  }
  if (!view.alive) return;
  const candles = rows(market?.candles);
  const trades = rows(market?.trades);
  if (!candles.length && !trades.length) {
    container.dataset.state = "empty";
    fill(
      container,
      h(
        "p",
        { class: "empty", "data-testid": "chart-empty" },
        `No market data stored for this window (${alert.venue} ${alert.symbol}, ${utc(alert.start)} to ${utc(alert.end)}). `,
        "Trades ingested into the lake for this symbol and time appear here.",
      ),
    );
    return;
  }
  let Plotly;
  try {
    Plotly = await loadPlotly();
  } catch (error) {
    container.dataset.state = "error";
    fill(container, h("p", { class: "form-error", role: "alert" }, error.message));
    return;
  }
  if (!view.alive) return;
  const plot = h("div", { class: "plot", "data-testid": "chart-plot" });
  fill(container, describe(alert, market, candles, trades), plot);
  const { traces, layout } = figure(alert, candles, trades, market.interval || "1m");
  await Plotly.newPlot(plot, traces, layout, { displaylogo: false, responsive: true });
  container.dataset.state = "rendered";
}

/** The first and last moment in the data, as milliseconds (null when there is none). */
function extent(candles, trades) {
  let first = Infinity;
  let last = -Infinity;
  for (const row of [...candles, ...trades]) {
    const moment = Date.parse(timeOf(row));
    if (!Number.isFinite(moment)) continue;
    first = Math.min(first, moment);
    last = Math.max(last, moment);
  }
  return Number.isFinite(first) ? [first, last] : null;
}

function describe(alert, market, candles, trades) {
  const span = extent(candles, trades);
  const from = span ? utc(new Date(span[0])) : "—";
  const to = span ? utc(new Date(span[1])) : "—";
  return h(
    "p",
    { class: "chart-caption", "data-testid": "chart-caption" },
    `${candles.length} ${market.interval || "1m"} candles and ${trades.length} trades from ${from} to ${to}. `,
    `Shaded: the alert window, ${utc(alert.start)} to ${utc(alert.end)}; dashed line: detected at ${utc(alert.detected_at)}.`,
    market.note ? ` Note: ${market.note}.` : "",
  );
}

function figure(alert, candles, trades, interval) {
  const traces = [];
  if (candles.length) {
    const x = candles.map((c) => plotTime(timeOf(c)));
    traces.push({
      type: "candlestick",
      name: `${interval} candles`,
      x,
      open: candles.map((c) => c.open),
      high: candles.map((c) => c.high),
      low: candles.map((c) => c.low),
      close: candles.map((c) => c.close),
      increasing: { line: { color: COLOURS.up } },
      decreasing: { line: { color: COLOURS.down } },
      yaxis: "y",
    });
    traces.push({ type: "bar", name: "volume", x, y: candles.map((c) => c.volume ?? c.amount ?? 0), marker: { color: COLOURS.volume }, yaxis: "y2" });
  }
  for (const side of ["buy", "sell"]) {
    const picked = trades.filter((t) => t.side === side);
    if (!picked.length) continue;
    traces.push({
      type: "scatter", // SVG, not WebGL: works without a GPU and stays inspectable
      mode: "markers",
      name: side === "buy" ? "buys" : "sells",
      x: picked.map((t) => plotTime(timeOf(t))),
      y: picked.map((t) => t.price),
      marker: { color: COLOURS[side], size: 4, opacity: 0.6 },
      yaxis: "y",
    });
  }
  const [x0, x1] = visibleSpan(alert, candles, trades);
  const detected = plotTime(alert.detected_at);
  const layout = {
    height: 460,
    margin: { l: 70, r: 20, t: 30, b: 40 },
    showlegend: true,
    legend: { orientation: "h", y: -0.12 },
    hovermode: "x unified",
    xaxis: { type: "date", rangeslider: { visible: false }, anchor: "y2", title: { text: "time (UTC)" } },
    yaxis: { domain: [0.3, 1], title: { text: "price" }, tickformat: ".4~g" },
    yaxis2: { domain: [0, 0.22], title: { text: "volume" } },
    shapes: [
      { type: "rect", name: "alert window", xref: "x", yref: "paper", x0, x1, y0: 0, y1: 1, fillcolor: COLOURS.window, opacity: 0.25, line: { width: 0 }, layer: "below" },
      { type: "line", name: "detected", xref: "x", yref: "paper", x0: detected, x1: detected, y0: 0, y1: 1, line: { color: COLOURS.detected, dash: "dash", width: 1.2 } },
    ],
    annotations: [{ x: detected, y: 1, xref: "x", yref: "paper", text: "detected", showarrow: false, yanchor: "bottom", font: { color: COLOURS.detected } }],
  };
  return { traces, layout };
}

/**
 * The shaded span: the alert window, widened around its middle to at least 1 % of the chart's time range,
 * so a 3-second burst on a two-hour chart is still visible (the caption gives the exact times).
 */
function visibleSpan(alert, candles, trades) {
  const start = Date.parse(alert.start);
  const end = Date.parse(alert.end);
  const span = extent(candles, trades);
  const least = span ? (span[1] - span[0]) * 0.01 : 0;
  if (end - start >= least) return [plotTime(alert.start), plotTime(alert.end)];
  const middle = (start + end) / 2;
  return [plotTime(new Date(middle - least / 2)), plotTime(new Date(middle + least / 2))];
}
