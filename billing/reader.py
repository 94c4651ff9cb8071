# Copyright 2026 city-parking contributors (Apache-2.0)
"""A JSON field reader that records problems with their field paths instead of raising."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

from billing.errors import Problem
from billing.tariff import MINUTES_PER_DAY
from parking_core.ids import ID_PATTERN, is_valid_id

TIME_PATTERN = re.compile(r"(\d\d):([0-5]\d)")
MAX_AMOUNT_FEN = 100_000_000  # ¥1,000,000: anything above is a data-entry error, not a price
MISSING: Any = object()

E = TypeVar("E")


class FieldReader:
    """Reads typed fields out of JSON objects, recording a problem instead of raising."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        """Record a problem at *path*."""
        self.problems.append(Problem(path, message))

    def obj(self, value: Any, path: str, allowed: frozenset[str]) -> Mapping[str, Any] | None:
        """Return *value* if it is an object, recording any field not in *allowed*."""
        if not isinstance(value, Mapping):
            self.fail(path, f"must be an object, got {_kind(value)}")
            return None
        for key in sorted(set(value) - allowed, key=str):
            self.fail(join_path(path, str(key)), "unknown field")
        return value

    def get(
        self,
        doc: Mapping[str, Any],
        path: str,
        key: str,
        check: Callable[[Any, str], E | None],
        default: Any = MISSING,
    ) -> E | None:
        """Read *key* of *doc* with *check*; a missing key is *default* or a problem."""
        if key not in doc:
            if default is MISSING:
                self.fail(join_path(path, key), "is required")
                return None
            return default  # type: ignore[no-any-return]
        return check(doc[key], join_path(path, key))

    def int_(self, value: Any, path: str, low: int = 0, high: int = MAX_AMOUNT_FEN) -> int | None:
        """Return *value* if it is an integer in [low, high] (booleans are not integers)."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be an integer, got {_kind(value)}")
            return None
        if not low <= value <= high:
            self.fail(path, f"must be between {low} and {high}, got {value}")
            return None
        return value

    def opt_int(self, value: Any, path: str) -> int | None:
        """Return *value* as a non-negative integer, or None for null."""
        return None if value is None else self.int_(value, path)

    def bool_(self, value: Any, path: str) -> bool | None:
        """Return *value* if it is a boolean."""
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {_kind(value)}")
            return None
        return value

    def str_(self, value: Any, path: str) -> str | None:
        """Return *value* if it is a non-empty string."""
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"must be a non-empty string, got {_kind(value)}")
            return None
        return value

    def id_(self, value: Any, path: str) -> str | None:
        """Return *value* if it is an id in the contract's syntax."""
        text = self.str_(value, path)
        if text is not None and not is_valid_id(text):
            self.fail(path, f"must match {ID_PATTERN.pattern}")
            return None
        return text

    def enum(self, kind: type[E], value: Any, path: str) -> E | None:
        """Return the member of *kind* named by *value*."""
        try:
            return kind(value)  # type: ignore[call-arg]
        except ValueError:
            names = ", ".join(repr(m.value) for m in kind)  # type: ignore[attr-defined]
            self.fail(path, f"must be one of {names}, got {value!r}")
            return None

    def date_(self, value: Any, path: str) -> date | None:
        """Return *value* parsed as an ISO date (YYYY-MM-DD)."""
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(path, f"must be a date as YYYY-MM-DD, got {value!r}")
        return None

    def dates(self, value: Any, path: str) -> tuple[date, ...] | None:
        """Return a sorted, de-duplicated tuple of ISO dates."""
        if not isinstance(value, list):
            self.fail(path, f"must be a list of dates, got {_kind(value)}")
            return None
        found = [self.date_(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(sorted({d for d in found if d is not None}))

    def time_(self, value: Any, path: str, *, is_end: bool) -> int | None:
        """Return minutes since midnight; an end of 00:00 or 24:00 means the end of the day."""
        match = TIME_PATTERN.fullmatch(value) if isinstance(value, str) else None
        minutes = None if match is None else int(match[1]) * 60 + int(match[2])
        limit = MINUTES_PER_DAY if is_end else MINUTES_PER_DAY - 1
        if minutes is None or minutes > limit:
            last = "24:00" if is_end else "23:59"
            self.fail(path, f"must be a time of day HH:MM from 00:00 to {last}, got {value!r}")
            return None
        return MINUTES_PER_DAY if is_end and minutes == 0 else minutes

    def names(self, value: Any, path: str) -> tuple[str, str]:
        """Return the (zh, en) names of an object {"zh": ..., "en": ...}."""
        doc = self.obj(value, path, frozenset({"zh", "en"}))
        if doc is None:
            return ("", "")
        zh = self.get(doc, path, "zh", self.str_)
        en = self.get(doc, path, "en", self.str_)
        return (zh or "", en or "")


def _kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return kinds.get(type(value), type(value).__name__)


def join_path(path: str, key: str) -> str:
    """Return the field path of *key* inside *path* (a.b, or b at the top)."""
    return f"{path}.{key}" if path else key
