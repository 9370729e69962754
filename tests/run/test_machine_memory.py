"""The machine's available memory as the memory guard sees it: a real drop while memory is held, and a guard
that stops a level when client and a local server together would not fit."""

from __future__ import annotations

from helpers import wait_until

from pgstress.run.machine_memory import MachineMemoryWatch
from pgstress.run.memory_guard import MemoryGuard, available_ram_mb

MIB = 1024 * 1024


def test_the_watch_keeps_the_lowest_available_memory_while_memory_is_held() -> None:
    """Others share this machine, so the drop is checked against a reading taken while 256 MiB are held, not
    against 256 MiB: the watch's lowest sample must be at least as low (within what others may do in 0.1 s)."""
    baseline = available_ram_mb()
    assert baseline is not None
    with MachineMemoryWatch(baseline) as watch:
        held = b"\1" * (256 * MIB)  # written, so resident
        during = available_ram_mb()
        assert during is not None
        wait_until(lambda: watch.lowest_mb is not None and watch.lowest_mb <= during + 32,
                   "a sample taken while the memory is held", timeout_s=10)
        del held
    lowest = watch.lowest_mb
    assert lowest is not None and watch.drop_mb == max(0.0, baseline - lowest)
    assert watch.drop_mb >= baseline - during - 32


def test_without_a_baseline_nothing_is_sampled() -> None:
    with MachineMemoryWatch(None) as watch:
        pass
    assert watch.drop_mb is None


def test_the_guard_says_when_the_machine_not_the_client_sets_its_estimate() -> None:
    guard = MemoryGuard(limit_mb=100.0)
    guard.observe(1000, 10.0, None, 5.0, machine_mb=40.0)  # the client grew 10 MiB, the machine lost 40
    assert guard.estimate_mb(4000) == 160.0
    refusal = guard.refusal(4000)
    assert refusal is not None and refusal.startswith(
        "estimated memory of this client and a server on this machine (from how far the machine's available memory"
        " fell) 160.0 MiB for this level exceeds --max-client-memory-mb 100")
    guard.observe(2000, 80.0, machine_mb=20.0)  # a larger level, where the client's own growth is the most
    assert guard.estimate_mb(4000) == 160.0
    refusal = guard.refusal(4000)
    assert refusal is not None and refusal.startswith("estimated client memory 160.0 MiB")
