"""Query-parameter parsing that refuses bad input with a 400 problem naming the parameter."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.problems import ProblemError, field_error

# Times and dates a request may name: 1970 to 2199. Wider than any parking record, and far enough
# from datetime's year 1 and 9999 that arithmetic on them (a default range, a time-zone shift, a
# day's hours) never overflows into a 500.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# Numbers closer to 0 than this (a centimetre in degrees) are noise, and denormals among them
# underflow in PostgreSQL's distance maths ("value out of range: underflow"): refused, 0 is fine.
FINEST_NUMBER = 1e-7
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"^(?P<n>\d{1,4})(?P<unit>[mhd])$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}


def bad_param(name: str, message: str) -> ProblemError:
    """Return the 400 problem for query parameter *name*."""
    return ProblemError(
        pt.VALIDATION, f"{name}: {message}", status=400, errors=[field_error(name, message, "invalid")]
    )


def float_param(
    request: web.Request, name: str, low: float, high: float, default: float | None = None
) -> float:
    """Return a float parameter within [low, high]."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        if default is None:
            raise bad_param(name, "is required")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise bad_param(name, f"{raw!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise bad_param(name, f"must be between {low:g} and {high:g}")
    if value != 0 and abs(value) < FINEST_NUMBER:
        raise bad_param(name, f"must be 0 or at least {FINEST_NUMBER:g} from it")
    return value


def int_param(request: web.Request, name: str, low: int, high: int, default: int) -> int:
    """Return an integer parameter within [low, high]."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?\d{1,9}", raw):
        raise bad_param(name, f"{raw!r} is not an integer")
    value = int(raw)
    if not low <= value <= high:
        raise bad_param(name, f"must be between {low} and {high}")
    return value


def time_param(request: web.Request, name: str, default: datetime) -> datetime:
    """Return an RFC 3339 time parameter; an offset is required."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+"))  # a '+' in a query string arrives as ' '
    except ValueError:
        raise bad_param(name, f"{raw!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        raise bad_param(name, "needs a UTC offset, e.g. 2026-11-23T08:00:00+08:00")
    if not EARLIEST <= value < LATEST:
        raise bad_param(name, f"must be between {EARLIEST.year} and {LATEST.year - 1}")
    return value


def date_param(request: web.Request, name: str, default: date) -> date:
    """Return a YYYY-MM-DD query parameter between 1970 and 2199."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise bad_param(name, f"{raw!r} is not a date like 2026-11-23") from None
    if not EARLIEST.date() <= value < LATEST.date():
        raise bad_param(name, f"must be between {EARLIEST.year} and {LATEST.year - 1}")
    return value


def duration_param(request: web.Request, name: str, default: timedelta, step: timedelta) -> timedelta:
    """Return a duration like ``15m``, ``1h`` or ``1d`` that is a whole multiple of *step*."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    match = _DURATION.match(raw)
    if match is None:
        raise bad_param(name, f"{raw!r} is not a duration like 5m, 15m, 1h or 1d")
    value = timedelta(minutes=int(match["n"]) * _UNIT_MINUTES[match["unit"]])
    if value <= timedelta(0) or value % step:
        raise bad_param(name, f"must be a positive multiple of {int(step.total_seconds() // 60)} minutes")
    return value
