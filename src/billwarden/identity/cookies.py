"""The browser session's cookie and CSRF names, shared by sign-in and by the auth dependencies."""

SESSION_COOKIE = "bw_session"
CSRF_COOKIE = "bw_csrf"
CSRF_HEADER = "X-CSRF-Token"
