"""A live stream's mailbox: the newest counts of each lot, bounded however slowly the page reads."""

from __future__ import annotations

from typing import Any

from guidance_api.live import Mailbox


def lot(lot_id: str, free: int, district: str = "d1") -> dict[str, Any]:
    """A lot's view as the live feed sends it (the fields that matter here)."""
    return {"lot_id": lot_id, "district_id": district, "free": free}


async def test_a_page_that_never_reads_holds_one_entry_a_lot_and_skips_to_the_newest() -> None:
    """Ten thousand batches for three lots while the page is busy: it then gets three lots, newest."""
    box = Mailbox(lambda _lot: True)
    for n in range(10_000):
        box.put([lot("A", n % 50), lot("B", n % 7), lot("C", n % 3)])
        assert len(box) <= 3
    got = await box.take(0.01)
    assert got == [lot("A", 9_999 % 50), lot("B", 9_999 % 7), lot("C", 9_999 % 3)]
    assert await box.take(0.01) == []  # nothing new: a keep-alive is due


async def test_lots_outside_the_stream_scope_never_enter() -> None:
    """The stream's filter (its token's scope) is applied on the way in: no memory for others' lots."""
    box = Mailbox(lambda view: view["district_id"] == "mine")
    box.put([lot("X", 1, "other"), lot("Y", 2, "mine")])
    assert len(box) == 1
    assert await box.take(0.01) == [lot("Y", 2, "mine")]


async def test_a_closed_mailbox_ends_the_stream() -> None:
    """Server shutdown: take answers None at once, even with changes pending."""
    box = Mailbox(lambda _lot: True)
    box.put([lot("A", 1)])
    box.close()
    assert await box.take(10) is None
