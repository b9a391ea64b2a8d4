"""The console's sign-in page (server-rendered with Jinja2). Its script and styles are files the
console serves (/admin/static): the page runs under the console's Content-Security-Policy."""

from __future__ import annotations

from jinja2 import Environment, select_autoescape

# kept in Python so it ships in the package with no package-data entry
LOGIN_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign in · billwarden</title>
  <link rel="stylesheet" href="/admin/static/login.css">
</head>
<body>
<main>
  <h1>billwarden</h1>
  <form id="login" method="post" action="{{ login_url }}" data-next="{{ next_url }}">
    <label>Email <input name="email" type="email" autocomplete="username" required></label>
    <label>Password
      <input name="password" type="password" autocomplete="current-password" required>
    </label>
    <button type="submit">Sign in</button>
    <div id="error" role="alert"></div>
  </form>
  <noscript>Signing in needs JavaScript.</noscript>
</main>
<script src="/admin/static/login.js"></script>
</body>
</html>
"""

_environment = Environment(autoescape=select_autoescape(default=True))
_login = _environment.from_string(LOGIN_TEMPLATE)


def render_login_page(*, login_url: str, next_url: str) -> str:
    return _login.render(login_url=login_url, next_url=next_url)
