"""Logs are one JSON object per line, carrying the request id."""

from __future__ import annotations

import logging
import sys

import orjson

from billwarden.core.logging import JsonFormatter, RequestIdFilter, TextFormatter


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "billwarden.test", "levelno": logging.INFO, "levelname": "INFO", "msg": message}
    )
    for key, value in extra.items():
        setattr(record, key, value)
    RequestIdFilter().filter(record)
    return record


class TestJsonLogs:
    def test_one_object_with_request_id_and_extras(self) -> None:
        line = JsonFormatter().format(
            _record("hello", request_id="req-1", event_id="evt_1", color_message="x")
        )
        entry = orjson.loads(line)
        assert entry["message"] == "hello"
        assert entry["level"] == "info"
        assert entry["request_id"] == "req-1"
        assert entry["event_id"] == "evt_1"
        assert "color_message" not in entry
        assert "\n" not in line

    def test_exception_is_kept_in_the_log(self) -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            record = _record("failed")
            record.exc_info = sys.exc_info()
        entry = orjson.loads(JsonFormatter().format(record))
        assert "ValueError: boom" in entry["exception"]


class TestTextLogs:
    def test_missing_request_id_shows_a_dash(self) -> None:
        assert "[-] hello" in TextFormatter().format(_record("hello"))
