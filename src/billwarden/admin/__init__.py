"""The admin console: server-rendered pages over the domains' services."""
