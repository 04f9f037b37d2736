"""The JSON log format: one object per line, with the fields a module passes along."""

from __future__ import annotations

import json
import logging

from api.logs import JsonFormatter


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("adapters.dispatcher", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_time_level_logger_message_and_the_extra_fields() -> None:
    line = JsonFormatter().format(record("retry %d", 3, platform="vtex", attempt=3))
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "adapters.dispatcher"
    assert entry["message"] == "retry 3"
    assert (entry["platform"], entry["attempt"]) == ("vtex", 3)
    assert entry["time"].endswith("Z")
    assert "\n" not in line


def test_a_line_feed_in_a_message_stays_inside_its_json_line() -> None:
    line = JsonFormatter().format(record("two\nlines"))
    assert "\n" not in line
    assert json.loads(line)["message"] == "two\nlines"


def test_an_exception_is_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        made = record("failed")
        made.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(made))
    assert "Traceback" in entry["exception"]
    assert "ValueError: boom" in entry["exception"]
