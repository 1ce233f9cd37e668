"""The lab's small state file (``.lab/state.json``).

It records which provider built the machines and how far the lifecycle got,
so that commands run out of order refuse with a clear message (Molecule's
model: create -> converge -> verify -> destroy).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labcore.exitcodes import Refusal
from labcore.topology import ROOT

PHASES = ("absent", "created", "provisioned")


class LabStateError(Refusal, RuntimeError):
    """A command that cannot run in the lab's current phase."""


def lab_dir(create: bool = True) -> Path:
    """Where the lab keeps its state, ssh_config, keys and results."""
    d = Path(os.environ.get("LAB_DIR") or ROOT / ".lab")
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass
class State:
    phase: str = "absent"
    provider: str | None = None
    platform: str | None = None
    interface: str | None = None      # host-side interface of the lab network
    topology: str | None = None       # the topology file the lab was built from
    profile: str | None = None        # security profile last provisioned (article | secure)
    timeout_scale: float | None = None   # what the machines need when slow (VMs under TCG); see labcore.poll
    updated: float = field(default_factory=time.time)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def is_up(self) -> bool:
        return self.phase in ("created", "provisioned")


def path() -> Path:
    # Reading the state must not create anything: a refused command leaves no trace.
    return lab_dir(create=False) / "state.json"


def load() -> State:
    p = path()
    if not p.exists():
        return State()
    try:
        data = json.loads(p.read_text())
        return State(**{k: v for k, v in data.items() if k in State.__dataclass_fields__})
    except (ValueError, TypeError):
        raise LabStateError(f"{p} is unreadable; run `invoke down` to clean up and start again") from None


def save(state: State) -> None:
    state.updated = time.time()
    lab_dir()
    tmp = path().with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2, sort_keys=True) + "\n")
    tmp.replace(path())


def clear() -> None:
    path().unlink(missing_ok=True)


def require(*phases: str, action: str) -> State:
    """Return the state if the lab is in one of ``phases``; otherwise say what to run first."""
    s = load()
    if s.phase in phases:
        return s
    hint = {
        "absent": "the lab is not up: run `invoke up` first",
        "created": "the machines are up but not provisioned: run `invoke provision` first",
        "provisioned": "the lab is already up: run `invoke down` or `invoke rebuild`",
    }[s.phase]
    raise LabStateError(f"cannot {action}: {hint}")
