"""``parking-reconcile``: a provider's daily statement against the ledger, and daily totals per lot."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import astuple
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from billing.adapters.reconcile_store import StatementDay, daily_totals, reconcile_statement
from billing.notify import PROVIDERS
from billing.reconcile import StatementError, sum_totals
from parking_core.adapters.settings import Settings

TOTAL_COLUMNS = ("invoiced", "adjusted", "captured", "refunded", "written_off", "outstanding")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parking-reconcile",
        description="Reconcile money. `statement` checks a provider's daily statement file (CSV) "
        "against the ledger and lists every mismatch with its reason (exit 1 if any); `totals` "
        "prints a day's invoiced, captured, refunded, written-off and outstanding fen per lot. "
        "Needs PARKING_DATABASE_URL.",
    )
    parser.add_argument("--database-url", help="override PARKING_DATABASE_URL")
    parser.add_argument(
        "--time-zone", default="Asia/Shanghai", help="the day's time zone (default Asia/Shanghai)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    statement = sub.add_parser("statement", help="reconcile a provider's statement of a day")
    statement.add_argument("--provider", required=True, choices=sorted(PROVIDERS))
    statement.add_argument("--day", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    statement.add_argument("file", type=Path, help="the statement CSV ('-' for standard input)")
    totals = sub.add_parser("totals", help="a day's totals per lot, and for the scope")
    totals.add_argument("--day", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    totals.add_argument("--lot", action="append", default=[], help="a lot of the scope (repeatable)")
    totals.add_argument(
        "--district", action="append", default=[], help="a district of the scope (repeatable)"
    )
    return parser


async def run_statement(conn: asyncpg.Connection, args: argparse.Namespace, text: str) -> int:
    """Print every mismatch; return 1 if there is one."""
    of = StatementDay(args.provider, args.day, ZoneInfo(args.time_zone))
    mismatches = await reconcile_statement(conn, of, text, datetime.now(UTC))
    for m in mismatches:
        print(
            f"{m.reason.value}\t{m.kind.value}\t{m.reference}\tledger={m.ledger_fen}\tstatement={m.statement_fen}"
        )
    print(f"{len(mismatches)} mismatch(es) for {args.provider} on {args.day.isoformat()}")
    return 1 if mismatches else 0


async def run_totals(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    """Print the day's totals per lot in the scope, then their sum."""
    lots = set(args.lot)
    if args.district:
        rows = await conn.fetch("SELECT lot_id FROM lots WHERE district_id = ANY($1::text[])", args.district)
        lots |= {r["lot_id"] for r in rows}
        if not lots:
            print("no lot in that scope", file=sys.stderr)
            return 2
    per_lot = await daily_totals(conn, args.day, ZoneInfo(args.time_zone), frozenset(lots))
    print("\t".join(("lot_id", *TOTAL_COLUMNS)))
    for lot_id, totals in per_lot.items():
        print("\t".join((lot_id, *map(str, astuple(totals)))))
    print("\t".join(("TOTAL", *map(str, astuple(sum_totals(per_lot.values()))))))
    return 0


async def run(args: argparse.Namespace, url: str) -> int:
    """Connect and run the chosen command."""
    text = ""
    if args.command == "statement":
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text(encoding="utf-8")
    conn = await asyncpg.connect(url)
    try:
        if args.command == "statement":
            return await run_statement(conn, args, text)
        return await run_totals(conn, args)
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``parking-reconcile`` command."""
    args = _parser().parse_args(argv)
    url = args.database_url or Settings().database_url
    if url is None:
        print("parking-reconcile: PARKING_DATABASE_URL is not set", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args, url))
    except StatementError as exc:
        print(f"parking-reconcile: {exc}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"parking-reconcile: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
