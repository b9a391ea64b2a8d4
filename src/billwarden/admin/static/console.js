// The admin console's shared script. Every write goes through billwarden's JSON API with the
// session's CSRF token. Served as a file: the Content-Security-Policy runs no inline script.
"use strict";

function csrfToken() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("bw_csrf="));
  return found ? decodeURIComponent(found.slice(8)) : "";
}

async function api(method, url, body) {
  const response = await fetch(url, {
    method, credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrfToken()},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) { throw new Error(data.message || ("HTTP " + response.status)); }
  return data;
}

function say(element, text, good) {
  element.textContent = text;
  element.classList.remove("said-good", "said-bad");
  element.classList.add(good ? "said-good" : "said-bad");
}

// the project and mode the page shows (data attributes of <body>)
const consoleFrame = {
  projectId: document.body.dataset.projectId || null,
  mode: document.body.dataset.mode || "test",
};

document.querySelectorAll("form.switcher select").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});
