"""The admin console's errors, each with its stable code."""

from __future__ import annotations

from billwarden.errors import NotFound


class StaticFileNotFound(NotFound):
    code = "STATIC_FILE_NOT_FOUND"
