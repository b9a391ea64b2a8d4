"""The console's sign-in page (server-rendered with Jinja2)."""

from __future__ import annotations

from jinja2 import Environment, select_autoescape

# kept in Python so it ships in the package with no package-data entry
LOGIN_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign in · billwarden</title>
  <style>
    body { font-family: system-ui, sans-serif; background: #f5f6f8; margin: 0; }
    main { max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem;
           border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.12); }
    label { display: block; margin-top: 1rem; font-size: .9rem; }
    input { width: 100%; box-sizing: border-box; padding: .5rem; margin-top: .25rem; }
    button { margin-top: 1.5rem; width: 100%; padding: .6rem; }
    #error { color: #b00020; min-height: 1.2rem; margin-top: 1rem; font-size: .9rem; }
  </style>
</head>
<body>
<main>
  <h1>billwarden</h1>
  <form id="login" method="post" action="{{ login_url }}">
    <label>Email <input name="email" type="email" autocomplete="username" required></label>
    <label>Password
      <input name="password" type="password" autocomplete="current-password" required>
    </label>
    <button type="submit">Sign in</button>
    <div id="error" role="alert"></div>
  </form>
  <noscript>Signing in needs JavaScript.</noscript>
</main>
<script>
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch({{ login_url | tojson }}, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    credentials: "same-origin",
    body: JSON.stringify({email: form.get("email"), password: form.get("password")}),
  });
  if (response.ok) {
    window.location.assign({{ next_url | tojson }});
  } else {
    const body = await response.json().catch(() => ({}));
    document.getElementById("error").textContent = body.message || "Sign-in failed.";
  }
});
</script>
</body>
</html>
"""

_environment = Environment(autoescape=select_autoescape(default=True))
_login = _environment.from_string(LOGIN_TEMPLATE)


def render_login_page(*, login_url: str, next_url: str) -> str:
    return _login.render(login_url=login_url, next_url=next_url)
