// Log in with an API key or a user name and password. The server sets a signed session cookie;
// the key or password is sent once and never kept by the page.

import { api } from "./api.js";
import { h, fill, field } from "./dom.js";

export function render(main, ctx) {
  if (ctx.session) {
    ctx.navigate("#/alerts");
    return;
  }
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "login-error", hidden: true });

  async function submit(event, body) {
    event.preventDefault();
    const form = event.target;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.hidden = true;
    try {
      const session = await api("POST", "/session", body, { quiet401: true });
      form.reset();
      ctx.loggedIn(session);
    } catch (failure) {
      fill(
        error,
        failure.status === 401
          ? "Log-in failed: that API key, or that user name and password, is not right."
          : `Log-in failed: ${failure.message}`,
      );
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  const keyForm = h(
    "form",
    {
      "aria-labelledby": "key-title",
      "data-testid": "login-key-form",
      onsubmit: (event) => submit(event, { api_key: event.target.api_key.value.trim() }),
    },
    h("h2", { id: "key-title" }, "With an API key"),
    field(
      "API key",
      h("input", { name: "api_key", type: "password", autocomplete: "off", required: true, spellcheck: "false", "data-testid": "login-api-key" }),
      "Starts with tw_. Ask an admin for one (tapewatch keys create).",
    ),
    h("button", { type: "submit", "data-testid": "login-key-submit" }, "Log in"),
  );

  const passwordForm = h(
    "form",
    {
      "aria-labelledby": "password-title",
      "data-testid": "login-password-form",
      onsubmit: (event) =>
        submit(event, { name: event.target.name.value.trim(), password: event.target.password.value }),
    },
    h("h2", { id: "password-title" }, "With a user name and password"),
    field("User name", h("input", { name: "name", autocomplete: "username", required: true, "data-testid": "login-name" })),
    field(
      "Password",
      h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, "data-testid": "login-password" }),
    ),
    h("button", { type: "submit", "data-testid": "login-password-submit" }, "Log in"),
  );

  fill(
    main,
    h(
      "section",
      { class: "login", "aria-labelledby": "login-title" },
      h("h1", { id: "login-title" }, "Log in to Tapewatch"),
      error,
      h("div", { class: "login-forms" }, keyForm, passwordForm),
    ),
  );
  keyForm.querySelector("input").focus();
}
