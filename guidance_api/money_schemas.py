"""Request bodies and path parsing of the money routes (pydantic, strict)."""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from guidance_api import problem_types as pt
from guidance_api.problems import ProblemError, field_error
from parking_core.plates import is_plausible_plate, normalise_plate

MAX_FEN = 100_000_000  # ¥1,000,000: any larger amount is a typo
INVOICE_ID_SCHEMA = {"type": "string", "pattern": "^inv_[0-9a-f]{24}$"}
PLATE_SCHEMA = {"type": "string", "description": "a Chinese plate, e.g. 豫A12345 (normalised)"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConsentBody(_Body):
    """``PUT /v1/driver/consent``: agree (or no longer agree) to leave first and pay later."""

    pay_later: bool


class PaymentBody(_Body):
    """``POST /v1/invoices/{invoice_id}/payments``: which provider's rails to pay through."""

    provider: Literal["wechatpay", "alipay"]


class DriverAccountBody(_Body):
    """``PUT /v1/admin/drivers/{account_id}``."""

    name: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] = ""


class LotMoneyPolicyBody(_Body):
    """``PUT /v1/admin/lots/{lot_id}/money-policy``: what a lot allows (docs/money.md)."""

    pay_later: bool = True
    arrears_limit_fen: int = Field(default=5_000, ge=0, le=MAX_FEN)
    deny_entry_when_blacklisted: bool = False
    pay_within_s: int = Field(default=259_200, ge=0, le=31_536_000)


class WriteOffBody(_Body):
    """``POST /v1/operator/invoices/{invoice_id}/write-off``: why, and how much (default: all due)."""

    reason: Annotated[str, StringConstraints(min_length=3, max_length=500, strip_whitespace=True)]
    amount_fen: int | None = Field(default=None, gt=0, le=MAX_FEN)


class AdjustmentBody(_Body):
    """``POST /v1/operator/invoices/{invoice_id}/adjustments``: a signed change of what is owed."""

    amount_fen: int = Field(ge=-MAX_FEN, le=MAX_FEN)  # negative: the driver owes less
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500, strip_whitespace=True)]

    @field_validator("amount_fen")
    @classmethod
    def _not_zero(cls, amount_fen: int) -> int:
        if amount_fen == 0:
            raise ValueError("an adjustment of 0 fen changes nothing")
        return amount_fen


def path_plate(request: web.Request) -> str:
    """Return the normalised plate of the path, or raise a 400 problem naming it."""
    plate = normalise_plate(request.match_info["plate"])
    if not is_plausible_plate(plate):
        raise ProblemError(
            pt.VALIDATION,
            f"{plate!r} is not a Chinese licence plate",
            status=400,
            errors=[field_error("plate", "not a Chinese licence plate", "plate")],
        )
    return plate


def path_invoice_id(request: web.Request) -> str:
    """Return the invoice id of the path, or raise a 400 problem naming it."""
    value = request.match_info["invoice_id"]
    if (
        len(value) != 28
        or not value.startswith("inv_")
        or not all(c in "0123456789abcdef" for c in value[4:])
    ):
        raise ProblemError(
            pt.VALIDATION,
            "invoice_id must be inv_ and 24 hex digits",
            status=400,
            errors=[field_error("invoice_id", "not an invoice id", "pattern")],
        )
    return value
