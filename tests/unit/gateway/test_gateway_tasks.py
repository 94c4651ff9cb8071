"""The gateway's task group: a stop drains and acks, a cancel stops every task, failures keep traces."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from device_gateway.inbox import Envelope
from device_gateway.writer import DECODE_SLICE
from tests.gateway_fakes import FakeLink, FakeStore, envelope, fake_gateway


def running_tasks() -> set[asyncio.Task[object]]:
    """Return the tasks of this loop still running, besides the test itself."""
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def test_a_stop_drains_commits_and_acks_what_was_received() -> None:
    """Messages taken before the stop are committed and acknowledged; then every task ends."""
    store, link = FakeStore(), FakeLink()
    gateway, writer = fake_gateway(store, link)
    for mid in range(5):
        writer.inbox.put(envelope(mid))
    gateway.stop.set()
    await asyncio.wait_for(gateway.run(), 10)
    assert sorted(link.acked) == [0, 1, 2, 3, 4]
    assert len(store.written) == 5
    assert (store.recounts, link.started, link.stopped, store.closed) == (1, True, True, True)
    assert running_tasks() == set()


async def test_the_liveness_sweep_runs_through_the_start_up_recount() -> None:
    """A recount that takes its time (a large city) holds up the link, never the liveness sweep."""
    hold = asyncio.Event()
    store, link = FakeStore(recount_hold=hold), FakeLink()
    gateway, _ = fake_gateway(store, link, gateway_liveness_interval_s=0.001)
    run = asyncio.create_task(gateway.run())

    await asyncio.wait_for(store.swept_twice.wait(), 10)
    assert (store.recounts, link.started) == (1, False)  # still recounting, not yet connected
    hold.set()
    await asyncio.wait_for(link.subscribed.wait(), 10)
    gateway.stop.set()
    await asyncio.wait_for(run, 10)
    assert (link.stopped, store.closed) == (True, True)
    assert running_tasks() == set()


async def test_cancelling_run_stops_the_writer_and_every_periodic_task() -> None:
    """A cancelled run leaves nothing behind, not even a writer in the middle of a commit."""
    store, link = FakeStore(hold=asyncio.Event()), FakeLink()
    gateway, writer = fake_gateway(store, link)
    run = asyncio.create_task(gateway.run())
    writer.inbox.put(envelope(1))
    await asyncio.wait_for(store.writing.wait(), 10)  # the writer is inside a commit
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    assert run.cancelled()
    assert running_tasks() == set()
    assert link.acked == []  # never committed, so never acknowledged: the broker redelivers it
    assert link.stopped


async def test_a_failing_periodic_job_is_logged_with_its_traceback() -> None:
    """The liveness sweep fails; the failure is logged with exc_info and the job keeps its timer."""
    store = FakeStore(sweep_failure=RuntimeError("sweep exploded"))
    gateway, _ = fake_gateway(store)
    calls = 0

    async def sweep_then_stop() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            gateway.stop.set()
        await gateway.sweep()

    with capture_logs() as logs:
        await asyncio.wait_for(gateway.every(0, sweep_then_stop, "liveness"), 10)
    failures = [e for e in logs if e["event"] == "task.failed"]
    assert calls == 2
    assert len(failures) == 2
    assert failures[0]["task"] == "liveness"
    assert failures[0]["exc_info"] is True
    assert failures[0]["log_level"] == "error"


async def test_a_batch_is_decoded_in_slices_that_let_the_loop_run() -> None:
    """Decoding in slices gives what decoding at once gives, and the event loop runs other tasks
    (the gate path's) between slices instead of waiting for the whole batch."""
    _, writer = fake_gateway(FakeStore())
    batch = [envelope(mid) for mid in range(3 * DECODE_SLICE + 5)]
    batch[7] = Envelope(batch[7].topic, b"{not json", 7, 1, batch[7].received_at, 0)
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_task())
    await asyncio.sleep(0)
    before = turns
    sliced = await writer.decode_in_slices(batch)
    during = turns - before
    other.cancel()
    assert sliced == writer.decode_batch(batch)
    assert len(sliced[2]) == 1
    assert during >= 3  # one turn per slice boundary at least
