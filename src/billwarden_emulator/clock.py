"""Calendar arithmetic for billing periods (UTC, month ends clamped like Stripe)."""

from __future__ import annotations

import calendar
import datetime as dt

_DAY = 86_400


def add_interval(timestamp: int, interval: str, count: int) -> int:
    """`timestamp` moved forward by `count` billing `interval`s (day, week, month, year)."""
    if interval == "day":
        return timestamp + count * _DAY
    if interval == "week":
        return timestamp + count * 7 * _DAY
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def next_period_end(anchor: int, interval: str, count: int, after: int) -> int:
    """The first period boundary counted from `anchor` that lies strictly after `after`."""
    cycles = 1
    while True:
        boundary = add_interval(anchor, interval, count * cycles)
        if boundary > after:
            return boundary
        cycles += 1
