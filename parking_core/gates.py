"""Barrier gates as values: plate reads, per-lot gate policy, commands and the events they leave."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from parking_core.errors import NaiveTimeError
from parking_core.ids import DeviceId, LotId
from parking_core.plate_matching import MIN_SCORE


class Lane(StrEnum):
    """Which way a gate's camera and loop look."""

    ENTRY = "entry"
    EXIT = "exit"


class Action(StrEnum):
    """What a command tells the barrier."""

    OPEN = "open"
    HOLD = "hold"


class Reason(StrEnum):
    """Why a command opens or holds (CONTRACT.md's, plus those documented in docs/gates.md)."""

    ENTRY = "entry"
    PAID = "paid"
    FREE = "free"
    PAY_LATER = "pay_later"
    RESERVED = "reserved"
    FULL = "full"
    BLACKLISTED = "blacklisted"
    ARREARS = "arrears"
    NO_ENTRY_RECORD = "no_entry_record"
    MANUAL = "manual"
    LOW_CONFIDENCE = "low_confidence"  # the read is not trustworthy: re-read or manual release
    PAYMENT_DUE = "payment_due"  # exit held until the amount shown is paid (pay station, QR code)
    NOT_PUBLIC = "not_public"  # a shared lot outside its windows, and the plate is no member
    QUOTA_FULL = "quota_full"  # a shared lot in a window whose public quota is used up; members enter


class NoEntryPolicy(StrEnum):
    """What an exit does when no session of the plate is open at the lot."""

    CHARGE = "charge"  # charge the lot's no_entry_fee_fen (0: let it out)
    REFER = "refer"  # hold and ask staff (the default: nobody is charged on a guess)


# PostgreSQL NOTIFY channel: a command queued outside the gateway (a manual release through the API)
# wakes the gateway's sweep, which sends it at once.
GATE_COMMANDS_CHANNEL = "gate_commands"
# A camera read below this confidence is not trusted at entry unless the lot says otherwise.
DEFAULT_MIN_CONFIDENCE = 0.8
# A car is through the barrier within seconds; two minutes covers a driver who stalls.
DEFAULT_PENDING_WINDOW = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """A lot's gate rules (``lot_gate_policies``); the defaults apply to a lot without a row."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    no_entry_record: NoEntryPolicy = NoEntryPolicy.REFER
    no_entry_fee_fen: int = 0
    deny_list: frozenset[str] = frozenset()
    pending_window: timedelta = DEFAULT_PENDING_WINDOW
    min_match_score: float = MIN_SCORE
    arrears_limit_fen: int | None = None  # hold entries owing more than this; None: never


@dataclass(frozen=True, slots=True)
class PlateRead:
    """One plate read of a gate camera, its plate already normalised."""

    device_id: DeviceId
    lot_id: LotId
    seq: int
    ts: datetime
    lane: Lane
    plate: str
    plate_color: str = "blue"
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if self.ts.utcoffset() is None:
            raise NaiveTimeError("plate read ts")


@dataclass(frozen=True, slots=True)
class Passage:
    """A vehicle crossed a gate's barrier (its loop saw it)."""

    device_id: DeviceId
    lot_id: LotId
    seq: int
    ts: datetime
    lane: Lane
    plate: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """What the backend tells a gate (``gates/{device_id}/command`` without id and ts)."""

    action: Action
    reason: Reason
    plate: str | None
    amount_fen: int = 0
    display: str = ""


class GateEventKind(StrEnum):
    """What operators are told about (``gate_events.kind``)."""

    TAILGATING = "tailgating"  # a passage with no open command before it
    MISSING_PASSAGE = "missing_passage"  # an open command with no passage within the window
    UNACKED_COMMAND = "unacked_command"  # re-sent as often as allowed, never acknowledged
    EXIT_MISSING = "exit_missing"  # a plate entered again while its session was still open
    AMBIGUOUS_PLATE = "ambiguous_plate"  # an exit read matched two sessions equally well
    MANUAL_RELEASE = "manual_release"  # an operator opened the barrier


@dataclass(frozen=True, slots=True)
class GateEvent:
    """One event for operators, with what it is about."""

    kind: GateEventKind
    device_id: DeviceId
    lot_id: LotId
    ts: datetime
    plate: str | None = None
    session_id: str | None = None
    detail: dict[str, str] = field(default_factory=dict)


def format_duration(stay: timedelta) -> str:
    """Return a stay as the gate display writes it: ``3小时05分`` (minutes rounded down)."""
    minutes = max(0, int(stay.total_seconds()) // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}小时{minutes:02d}分" if hours else f"{minutes}分"


def format_yuan(amount_fen: int) -> str:
    """Return fen as the display writes yuan: ``¥12.00``."""
    return f"¥{amount_fen // 100}.{amount_fen % 100:02d}"


# Display texts per reason: what the barrier's screen says to the driver (docs/gates.md).
DISPLAY_NOTE = {
    Reason.ENTRY: "欢迎光临",
    Reason.RESERVED: "预约车辆 欢迎光临",
    Reason.FULL: "车位已满",
    Reason.BLACKLISTED: "禁止入内 请联系工作人员",
    Reason.ARREARS: "有欠费 请先补缴",
    Reason.LOW_CONFIDENCE: "车牌识别不清 请稍候",
    Reason.FREE: "免费 一路顺风",
    Reason.PAID: "已缴费 一路顺风",
    Reason.PAY_LATER: "已记账",
    Reason.NO_ENTRY_RECORD: "无入场记录 请联系工作人员",
    Reason.MANUAL: "人工放行",
    Reason.PAYMENT_DUE: "请缴费",
    Reason.NOT_PUBLIC: "非开放时段 仅限内部车辆",
    Reason.QUOTA_FULL: "共享车位已满",
}


def display_text(
    plate: str | None, reason: Reason, stay: timedelta | None = None, amount_fen: int | None = None
) -> str:
    """Return the text for the gate's screen, e.g. ``豫A12345 3小时05分 ¥12.00 已记账``."""
    parts = [plate] if plate else []
    if stay is not None:
        parts.append(format_duration(stay))
    if amount_fen is not None:
        parts.append(format_yuan(amount_fen))
    fee_due = reason is Reason.NO_ENTRY_RECORD and amount_fen
    parts.append(DISPLAY_NOTE[Reason.PAYMENT_DUE] if fee_due else DISPLAY_NOTE[reason])
    return " ".join(parts)
