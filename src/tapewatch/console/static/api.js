// The REST API under /api/v1: one fetch wrapper that turns every failure into a sentence a person can act on.

export const API = "/api/v1";

/** A failed request: `status` is the HTTP status (0 when the server could not be reached). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

const listeners = new Set();

/** Called with every ApiError whose status is 401, so the app can send the user back to log in. */
export function onUnauthorized(listener) {
  listeners.add(listener);
}

/**
 * Call the API. `body` is sent as JSON; the result is the parsed JSON (null for an empty answer).
 * Throws ApiError with the server's own message ({"detail": "..."}) when there is one.
 */
export async function api(method, path, body = undefined, { quiet401 = false } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch {
    throw new ApiError(0, "The Tapewatch server cannot be reached. Check that it is running, then try again.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, describe(response.status, data, method, path));
    if (response.status === 401 && !quiet401) listeners.forEach((listener) => listener(error));
    throw error;
  }
  return data;
}

/** GET with query parameters (empty ones dropped). */
export function get(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const suffix = query.toString() ? `?${query}` : "";
  return api("GET", path + suffix);
}

export const post = (path, body = {}) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

/** The list in an answer that is either a bare list or a page ({items: [...]}). */
export function itemsOf(answer) {
  if (Array.isArray(answer)) return answer;
  return answer?.items ?? [];
}

const FALLBACK = {
  400: "The request was not understood.",
  401: "You are not logged in, or your session has ended. Please log in.",
  403: "Your role does not allow this.",
  404: "Not found: it may have been removed.",
  409: "This changed in the meantime; reload to see its current state.",
  413: "That is too large for the server to accept.",
  422: "Some of the values are not valid.",
  429: "Too many requests; wait a moment and try again.",
};

function describe(status, data, method, path) {
  const detail = data?.detail;
  if (status === 404 && detail === "Not Found") {
    // the framework's answer for a path the server does not have at all
    return `This server does not offer ${method} ${API}${path.split("?")[0]}: it may be older than this console.`;
  }
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length) {
    // FastAPI's validation errors: [{loc: ["body", "reason"], msg: "Field required"}, ...]
    return detail
      .map((item) => {
        const where = (item.loc || []).filter((part) => part !== "body" && part !== "query").join(".");
        return where ? `${where}: ${item.msg}` : item.msg;
      })
      .join("; ");
  }
  if (FALLBACK[status]) return FALLBACK[status];
  if (status >= 500) return `The server failed (${status}) on ${method} ${path}; the problem is in its log.`;
  return `The server answered ${status} to ${method} ${path}.`;
}
