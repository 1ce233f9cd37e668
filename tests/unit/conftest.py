"""Every unit test runs in its own lab directory, with no network, no Docker engine and no
machines (what is refused, and how, is in hermetic.py).

Settings of the shell that runs pytest (LAB_TOPOLOGY, INVOKE_LAB_*, VAGRANT_*, ...) are
removed first, so a developer's environment cannot change what a unit test sees.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

import hermetic
from labcore import poll


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local_tool(*names): the test runs these tools of hermetic.TOOLS, which only check "
                   "files here (e.g. `vagrant validate`), by hermetic.real_tool")


@pytest.fixture(scope="session")
def unit_stubs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The directories of the stubs (hermetic.stub_dirs), made once per session."""
    return hermetic.stub_dirs(tmp_path_factory.mktemp("unit-tier-stubs"))


@pytest.fixture(autouse=True)
def unit_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
               tmp_path_factory: pytest.TempPathFactory, unit_stubs: list[Path]) -> Iterator[hermetic.Guard]:
    """Own LAB_DIR and cache, the shell's settings removed, stubs first on PATH, and the guard."""
    own = tmp_path_factory.mktemp("unit-env")
    env = hermetic.environment(dict(os.environ), unit_stubs, own)
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    for name, value in env.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    allowed = frozenset(n for m in request.node.iter_markers("local_tool") for n in m.args)
    guard = hermetic.Guard(request.node.nodeid, own / "refused.log",
                           os.path.realpath(tmp_path_factory.getbasetemp()),
                           os.path.realpath(unit_stubs[0].parent), allowed)
    guard.install(monkeypatch)
    # the process's one timeout multiplier (poll.set_scale, as `invoke up` on TCG VMs sets it) goes back
    # after each test: a unit test that sets it must not stretch the live tests' waits after it
    monkeypatch.setattr(poll, "_option", None)
    yield guard
    refused = guard.logged()
    if refused:
        pytest.fail(f"{request.node.nodeid} tried what the unit tier refuses (a refusal the code caught, or "
                    f"a stub called by a process the test started): {'; '.join(refused)}", pytrace=False)
