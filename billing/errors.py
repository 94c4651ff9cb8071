# Copyright 2026 city-parking contributors (Apache-2.0)
"""Exceptions raised by the billing package; each carries its data as attributes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class BillingError(Exception):
    """Base class for every error raised by billing."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a tariff document: where (a field path) and what."""

    path: str  # e.g. "bands[1].tiers[0].unit_price_fen"; "" means the document itself
    message: str

    def to_json(self) -> dict[str, str]:
        """Return the problem as a JSON object for an HTTP problem response."""
        return {"path": self.path, "message": self.message}


class TariffValidationError(BillingError, ValueError):
    """Raised by `parse_tariff` when a tariff document is invalid; lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        shown = "; ".join(f"{p.path or '<document>'}: {p.message}" for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid tariff: {shown}{more}")
        self.problems = tuple(problems)


class NaiveDatetimeError(BillingError, ValueError):
    """Raised when an entry or exit time has no UTC offset; times must be aware."""

    def __init__(self, field: str, value: datetime) -> None:
        super().__init__(f"{field} must be an aware datetime with a UTC offset, got {value!r}")
        self.field = field
        self.value = value


class ExitBeforeEntryError(BillingError, ValueError):
    """Raised when a stay's exit time is earlier than its entry time."""

    def __init__(self, entry: datetime, exit_at: datetime) -> None:
        super().__init__(
            f"exit {exit_at.isoformat()} is before entry {entry.isoformat()}",
        )
        self.entry = entry
        self.exit = exit_at


class StayTooLongError(BillingError, ValueError):
    """Raised when a stay is longer than pricing accepts: the work grows with every day priced."""

    def __init__(self, entry: datetime, exit_at: datetime, limit_days: int) -> None:
        super().__init__(
            f"the stay from {entry.isoformat()} to {exit_at.isoformat()} is longer than {limit_days} days"
        )
        self.entry = entry
        self.exit = exit_at
        self.limit_days = limit_days


class NoTariffInForceError(BillingError, LookupError):
    """Raised when no tariff version is valid at the requested time."""

    def __init__(self, tariff_id: str | None, at: datetime) -> None:
        super().__init__(f"no version of tariff {tariff_id!r} is in force at {at.isoformat()}")
        self.tariff_id = tariff_id
        self.at = at


class UnknownExampleTariffError(BillingError, LookupError):
    """Raised when an example tariff file named by the caller does not exist."""

    def __init__(self, tariff_id: str) -> None:
        super().__init__(f"no example tariff {tariff_id!r}")
        self.tariff_id = tariff_id


class LedgerRuleError(BillingError, ValueError):
    """Raised when a ledger entry would break a money rule (refund more than kept, and so on)."""

    def __init__(self, invoice_id: str, rule: str) -> None:
        super().__init__(f"invoice {invoice_id!r}: {rule}")
        self.invoice_id = invoice_id
        self.rule = rule


class NotificationRefusedError(BillingError, ValueError):
    """Raised when a payment notification is refused; `reason` is a stable code for the log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PlateBoundElsewhereError(BillingError, LookupError):
    """Raised when a plate is bound to another driver account: it must be unbound there first."""

    def __init__(self, plate: str) -> None:
        super().__init__(f"plate {plate} is bound to another account")
        self.plate = plate
