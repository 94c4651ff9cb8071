# Copyright 2026 city-parking contributors (Apache-2.0)
"""Billing: tariffs as data and a pricing engine exact to the fen (pure, no I/O, no clock).

The HTTP layer calls `parse_tariff` / `tariff_to_json` for tariff documents,
`select_tariff_version` to find the version in force at a session's entry, `price_stay`
and `quote_to_json` for quotes, and `describe_tariff`, `to_cds_policies`, `to_apds_rate_table`
for publishing. Semantics: docs/tariffs.md. The money rules (ledger, invoices, notify, payments,
arrears, reconcile) are modules of their own; their store adapters live in `billing.adapters`.
Semantics: docs/money.md.
"""

from billing.cds import to_apds_rate_table, to_cds_policies
from billing.describe import describe_tariff
from billing.errors import (
    BillingError,
    ExitBeforeEntryError,
    LedgerRuleError,
    NaiveDatetimeError,
    NoTariffInForceError,
    NotificationRefusedError,
    PlateBoundElsewhereError,
    Problem,
    StayTooLongError,
    TariffValidationError,
)
from billing.examples import load_example_tariffs
from billing.parsing import parse_tariff
from billing.payments import InvoiceSettledError, TooManyOrdersError
from billing.pricing import price_stay
from billing.quotes import (
    MAX_PRICED_STAY_DAYS,
    MAX_QUOTED_STAY_DAYS,
    LineKind,
    Quote,
    QuoteLine,
    TimedCharge,
    quote_to_json,
)
from billing.serialization import tariff_to_json
from billing.tariff import (
    Band,
    CapWindow,
    Charge,
    DayType,
    LotKind,
    PricingRules,
    Rounding,
    Tariff,
    Tier,
    VehicleClass,
    VehicleRule,
    select_tariff_version,
    tariff_in_force,
)

__all__ = [
    "MAX_PRICED_STAY_DAYS",
    "MAX_QUOTED_STAY_DAYS",
    "Band",
    "BillingError",
    "CapWindow",
    "Charge",
    "DayType",
    "ExitBeforeEntryError",
    "InvoiceSettledError",
    "LedgerRuleError",
    "LineKind",
    "LotKind",
    "NaiveDatetimeError",
    "NoTariffInForceError",
    "NotificationRefusedError",
    "PlateBoundElsewhereError",
    "PricingRules",
    "Problem",
    "Quote",
    "QuoteLine",
    "Rounding",
    "StayTooLongError",
    "Tariff",
    "TariffValidationError",
    "Tier",
    "TimedCharge",
    "TooManyOrdersError",
    "VehicleClass",
    "VehicleRule",
    "describe_tariff",
    "load_example_tariffs",
    "parse_tariff",
    "price_stay",
    "quote_to_json",
    "select_tariff_version",
    "tariff_in_force",
    "tariff_to_json",
    "to_apds_rate_table",
    "to_cds_policies",
]
