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

# The caller's settings for the lab, Invoke, Vagrant, Pulumi, Docker and Patroni (whose config
# reads PATRONI_* over its files): none reaches a unit test.
CLEARED_PREFIXES = ("LAB_", "INVOKE_", "VAGRANT_", "PULUMI_", "DOCKER_", "CONTAINER_HOST", "PATRONI_")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "local_tool(*names): the test runs these tools of hermetic.TOOLS, which only check "
                   "files here (e.g. `vagrant validate`), by hermetic.real_tool")


@pytest.fixture(scope="session")
def _stubs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return hermetic.stub_dirs(tmp_path_factory.mktemp("unit-tier-stubs"))


@pytest.fixture(autouse=True)
def unit_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
               tmp_path_factory: pytest.TempPathFactory, _stubs: list[Path]) -> Iterator[hermetic.Guard]:
    """Own LAB_DIR and cache, the shell's settings removed, stubs first on PATH, and the guard."""
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES):
            monkeypatch.delenv(name)
    own = tmp_path_factory.mktemp("unit-env")
    # Not created: several tests check that a refused command leaves no lab directory.
    monkeypatch.setenv("LAB_DIR", str(own / "lab"))
    monkeypatch.setenv("LAB_CACHE", str(own / "cache"))
    monkeypatch.setenv("PATH", os.pathsep.join([*map(str, _stubs), os.environ.get("PATH", "")]))
    monkeypatch.setenv(hermetic.STUBS_ENV, str(_stubs[0].parent))
    monkeypatch.setenv(hermetic.LOG_ENV, str(own / "refused.log"))
    monkeypatch.setenv("DOCKER_HOST", hermetic.NO_DOCKER)
    monkeypatch.setenv("VAGRANT_CHECKPOINT_DISABLE", "1")   # Vagrant's version check is a web request
    # pip in a child process: no index, and no config file naming one.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    allowed = frozenset(n for m in request.node.iter_markers("local_tool") for n in m.args)
    guard = hermetic.Guard(request.node.nodeid, own / "refused.log",
                           os.path.realpath(tmp_path_factory.getbasetemp()),
                           os.path.realpath(_stubs[0].parent), allowed)
    guard.install(monkeypatch)
    yield guard
    refused = guard.logged()
    if refused:
        pytest.fail(f"{request.node.nodeid} tried what the unit tier refuses (a refusal the code caught, or "
                    f"a stub called by a process the test started): {'; '.join(refused)}", pytrace=False)
