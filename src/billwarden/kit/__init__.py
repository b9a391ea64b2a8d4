"""Plumbing every domain shares: the camelCase base model, pagination, app-state dependencies and
the command-line helpers. kit knows no domain."""
