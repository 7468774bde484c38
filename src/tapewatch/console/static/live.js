// The live alert feed: one WebSocket for the whole console, reconnecting with back-off.
//
// States: "connecting" (first attempt), "live", "reconnecting" (waiting to try again), "offline" (stopped).
// After a reconnect, "resync" is emitted so pages reload what they show: alerts stored while the socket
// was down were never pushed.

import { API } from "./api.js";

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
/** Close codes the API uses when the session is missing or no longer valid. */
const AUTH_CLOSE_CODES = new Set([1008, 4001, 4003, 4401, 4403]);

export class LiveFeed {
  constructor() {
    this.socket = null;
    this.state = "offline";
    this.retryAt = null;
    this.attempt = 0;
    this.everOpen = false;
    this.timer = null;
    this.handlers = { alert: new Set(), state: new Set(), resync: new Set(), unauthorized: new Set() };
  }

  /** Subscribe to "alert", "state", "resync" or "unauthorized"; returns the unsubscribe function. */
  on(event, handler) {
    this.handlers[event].add(handler);
    return () => this.handlers[event].delete(handler);
  }

  start() {
    if (this.socket || this.timer) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    this.everOpen = false;
    this.attempt = 0;
    if (this.socket) this.socket.close(1000, "logged out");
    this.socket = null;
    this.setState("offline");
  }

  /** Try again at once (the "reconnect now" button). */
  reconnectNow() {
    if (this.stopped || this.state === "live" || this.state === "connecting") return;
    clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  connect() {
    this.timer = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${API}/ws/alerts`);
    this.socket = socket;
    this.setState(this.everOpen ? "reconnecting" : "connecting");
    socket.addEventListener("open", () => {
      const reconnected = this.everOpen;
      this.attempt = 0;
      this.everOpen = true;
      this.setState("live");
      if (reconnected) this.emit("resync");
    });
    socket.addEventListener("message", (event) => {
      const alert = unwrap(event.data);
      if (alert) this.emit("alert", alert);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return; // an old socket, already replaced
      this.socket = null;
      if (this.stopped) return;
      if (AUTH_CLOSE_CODES.has(event.code)) {
        this.stop();
        this.emit("unauthorized");
        return;
      }
      this.scheduleRetry();
    });
  }

  scheduleRetry() {
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState("reconnecting");
    this.timer = setTimeout(() => this.connect(), delay);
  }

  setState(state) {
    this.state = state;
    this.emit("state", state);
  }

  emit(event, value) {
    for (const handler of this.handlers[event]) {
      try {
        handler(value);
      } catch (error) {
        console.error(error);
      }
    }
  }
}

/** An alert from a message: either the alert itself or wrapped as {type: "alert", alert: {...}}. */
function unwrap(data) {
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    return null;
  }
  if (message && typeof message === "object") {
    if (message.alert && typeof message.alert === "object") return message.alert;
    if (message.data && typeof message.data === "object" && message.data.id) return message.data;
    if (message.id && message.typology) return message;
  }
  return null;
}
