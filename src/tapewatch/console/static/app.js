// The console's shell: session, hash router, header (navigation, live indicator, who is logged in),
// and the one place errors and notices are shown.

import { api, ApiError, onUnauthorized } from "./api.js";
import { LiveFeed } from "./live.js";
import { loadVocabulary } from "./vocabulary.js";
import { h, fill } from "./dom.js";
import * as login from "./login.js";
import * as alerts from "./alerts.js";
import * as alertDetail from "./alert.js";
import * as cases from "./cases.js";
import * as risk from "./risk.js";
import * as quality from "./quality.js";
import * as settings from "./settings.js";

const RANK = { viewer: 0, analyst: 1, admin: 2 };

const ROUTES = [
  [/^login$/, login.render, null],
  [/^alerts$/, alerts.render, "alerts"],
  [/^alerts\/([^/]+)$/, alertDetail.render, "alerts"],
  [/^cases$/, cases.renderBoard, "cases"],
  [/^cases\/(\d+)$/, cases.renderCase, "cases"],
  [/^risk$/, risk.renderIndex, "risk"],
  [/^risk\/([^/]+)\/([^/]+)$/, risk.renderSymbol, "risk"],
  [/^data-quality$/, quality.render, "data-quality"],
  [/^settings$/, settings.render, "settings"],
];

const $ = (id) => document.getElementById(id);

/** What every page gets: who is logged in, the live feed, and ways to report back to the user. */
const ctx = {
  session: null,
  live: new LiveFeed(),
  unseen: 0,

  /** Whether the logged-in user's role is at least `role` (the server checks again on every call). */
  can(role) {
    return Boolean(this.session) && RANK[this.session.role] >= RANK[role];
  },

  /** Show an error (an ApiError, an Error or a sentence) where the user will see it. */
  showError(error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof Error && !(error instanceof ApiError)) console.error(error);
    fill($("error-text"), message);
    $("error").hidden = false;
  },

  clearError() {
    $("error").hidden = true;
    fill($("error-text"));
  },

  /** A short confirmation ("Alert acknowledged."), read out by screen readers. */
  notify(message) {
    fill($("notice"), message);
  },

  /** Go to a page; `notice`, if given, is shown there (a route change clears old messages). */
  navigate(hash, notice = null) {
    pendingNotice = notice;
    if (location.hash === hash) route();
    else location.hash = hash;
  },

  /** Run an action, showing its error if it fails; returns its result or undefined. */
  async attempt(action) {
    this.clearError();
    try {
      return await action();
    } catch (error) {
      this.showError(error);
      return undefined;
    }
  },

  /** Called after logging in or out: refresh the header and start or stop the live feed. */
  setSession(session) {
    // the API answers {user, role}; accept {name, role} too
    this.session = session ? { name: session.user ?? session.name, role: session.role } : null;
    renderWho();
    if (session) this.live.start();
    else this.live.stop();
  },
};

let cleanup = null;
let pendingNotice = null;
let pendingError = null;
let returnTo = "#/alerts";

async function route() {
  // matched while still encoded: a symbol's "/" arrives as %2F and must not split the path
  const path = location.hash.replace(/^#\/?/, "").split("?")[0] || "alerts";
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  if (!ctx.session && path !== "login") {
    returnTo = location.hash || "#/alerts";
    location.replace("#/login");
    return;
  }
  if (cleanup) cleanup();
  cleanup = null;
  ctx.clearError();
  if (pendingError) ctx.showError(pendingError);
  pendingError = null;
  fill($("notice"), pendingNotice || "");
  pendingNotice = null;
  const main = $("main");
  const match = ROUTES.map(([pattern, render, nav]) => [path.match(pattern), render, nav]).find(([m]) => m);
  markNav(match ? match[2] : null);
  if (!match) {
    fill(main, h("h1", {}, "Page not found"), h("p", {}, "There is no page at this address. ", h("a", { href: "#/alerts" }, "Go to the alerts.")));
    return;
  }
  const [found, render] = match;
  const params = [...found.slice(1).map(decodeURIComponent)];
  const view = { alive: true };
  fill(main);
  try {
    const result = await render(main, ctx, params, query, view);
    if (typeof result === "function") {
      if (view.alive) cleanup = () => ((view.alive = false), result());
      else result();
    } else {
      cleanup = () => (view.alive = false);
    }
  } catch (error) {
    if (!view.alive || (error instanceof ApiError && error.status === 401)) return;
    ctx.showError(error);
    if (!main.childElementCount) {
      fill(
        main,
        h("h1", {}, "This page could not be loaded"),
        h("p", {}, "The reason is shown above. ", h("button", { type: "button", onclick: () => route() }, "Try again")),
      );
    }
  }
}

function markNav(active) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function renderWho() {
  const session = ctx.session;
  $("nav").hidden = !session;
  $("who").hidden = !session;
  $("live").hidden = !session;
  document.querySelector('[data-nav="settings"]').hidden = !ctx.can("admin");
  fill($("who-name"), session ? `${session.name} (${session.role})` : "");
}

const LIVE_TEXT = {
  live: "Live",
  connecting: "Connecting…",
  reconnecting: "Disconnected: reconnecting",
  offline: "Offline",
};

/** The live indicator: the state is announced to screen readers once, the countdown only shown. */
function showLiveState(state) {
  const indicator = $("live");
  if (indicator.dataset.state !== state) {
    indicator.dataset.state = state;
    fill($("live-text"), LIVE_TEXT[state] || state);
  }
  let countdown = "";
  if (state === "reconnecting" && ctx.live.retryAt && !ctx.live.socket) {
    countdown = ` in ${Math.max(1, Math.round((ctx.live.retryAt - Date.now()) / 1000))} s`;
  }
  fill($("live-countdown"), countdown);
  $("live-retry").hidden = state !== "reconnecting";
}

function countUnseen(alert) {
  if (location.hash.startsWith("#/alerts") && !location.hash.startsWith("#/alerts/")) return;
  ctx.unseen += 1;
  const badge = $("unseen");
  fill(badge, `${ctx.unseen} new`);
  badge.hidden = false;
  if (alert?.symbol) ctx.notify(`New ${alert.severity} alert on ${alert.venue} ${alert.symbol}.`);
}

function resetUnseen() {
  ctx.unseen = 0;
  $("unseen").hidden = true;
}

async function logout() {
  await ctx.attempt(async () => {
    try {
      await api("DELETE", "/session", undefined, { quiet401: true });
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) throw error;
    }
    ctx.setSession(null);
    returnTo = "#/alerts";
    location.hash = "#/login";
  });
}

function sessionEnded() {
  if (!ctx.session) return;
  returnTo = location.hash && location.hash !== "#/login" ? location.hash : "#/alerts";
  ctx.setSession(null);
  pendingError = "Your session has ended. Please log in again.";
  ctx.navigate("#/login");
}

/** After a successful log-in: back to where the user was going. */
ctx.loggedIn = (session) => {
  ctx.setSession(session);
  const target = returnTo && returnTo !== "#/login" ? returnTo : "#/alerts";
  returnTo = "#/alerts";
  ctx.navigate(target);
};

async function start() {
  onUnauthorized(sessionEnded);
  ctx.live.on("unauthorized", sessionEnded);
  ctx.live.on("state", showLiveState);
  ctx.live.on("alert", countUnseen);
  setInterval(() => ctx.live.state === "reconnecting" && showLiveState("reconnecting"), 1000);
  $("live-retry").addEventListener("click", () => ctx.live.reconnectNow());
  $("logout").addEventListener("click", logout);
  $("error-dismiss").addEventListener("click", () => ctx.clearError());
  document.querySelector("[data-skip]").addEventListener("click", (event) => {
    event.preventDefault();
    $("main").focus();
  });
  window.addEventListener("hashchange", route);
  const words = loadVocabulary().catch((error) => error);
  try {
    const session = await api("GET", "/session", undefined, { quiet401: true });
    ctx.setSession(session);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) pendingError = error.message; // e.g. unreachable
  }
  const failed = await words;
  if (failed instanceof Error) pendingError = pendingError || failed.message;
  if (location.hash.startsWith("#/alerts")) resetUnseen();
  window.addEventListener("hashchange", () => location.hash.startsWith("#/alerts") && resetUnseen());
  await route();
}

start();
