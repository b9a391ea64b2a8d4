"""Who is calling: console users, sessions, CSRF, developer and end-user JWTs, API keys."""
