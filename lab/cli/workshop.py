"""`invoke workshop.up | workshop.plan | workshop.status | workshop.down | workshop.ssh`: a room of
seats (independent labs) on one trainer host.

Settings come from invoke.yaml's ``workshop`` section (overridden by
``INVOKE_WORKSHOP_*`` and by options): where the room lives, the base subnet
and bridge prefix seats are derived from, how many seats come up at once.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from invoke import task
from rich.table import Table

from lab import lifecycle
from lab.cli import machines
from lab.cli.machines import console, fail, reporter
from lab.providers import image
from lab.providers.base import ProviderError
from labcore import guard, topology
from labcore import state as lab_state
from labcore.suggest import unknown
from lab.workshop import room as R
from lab.workshop.seats import Room, SeatError
from lab.workshop.seats import write as write_seat

ACTIONS = ("up", "plan", "status", "down", "ssh")
ERRORS = (topology.TopologyError, lab_state.LabStateError, ProviderError, guard.GuardError,
          lifecycle.LabError, image.ImageError, SeatError, R.WorkshopError)



def workshop_settings(c: Any) -> dict[str, Any]:
    ws = c.config.get("workshop") if hasattr(c, "config") else None
    return {k: ws[k] for k in ws} if ws else {}


def room_dir(c: Any, given: str | None) -> Path:
    configured = given or workshop_settings(c).get("dir") or ""
    return Path(configured or topology.ROOT / ".workshop").expanduser().resolve()


def parallel_of(c: Any, given: int | None) -> int:
    value = given or workshop_settings(c).get("parallel") or 0
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise SeatError(f"--parallel {value!r}: must be a whole number") from None
    if value < 0:
        raise SeatError(f"--parallel {value}: must be 1 or more (0 = one seat per core)")
    return value or R.default_parallel()


def seat_number(value: str) -> int:
    if not str(value).isdigit() or int(value) < 1:
        raise SeatError(f"seat {value!r}: give a seat number such as 1")
    return int(value)


def _action(action: str) -> str:
    if action in ACTIONS:
        return action
    raise SeatError(f"workshop: {unknown('action', action, ACTIONS, listing='invoke --list workshop')}")


DIR_HELP = "the room's folder (default: invoke.yaml workshop.dir, else .workshop/)"
PARALLEL_HELP = "seats handled at once (default: one per CPU core)"
SUBNET_HELP = "seat k's subnet is the k-th network of this size after it (default: the topology's lab.subnet)"
BRIDGE_HELP = "seat k's bridge is <prefix><k> (default: the topology's lab.bridge + 's')"


def _one_line(fn: Any) -> Any:
    """Every error of a workshop task as one line (lab.cli.machines.fail)."""
    try:
        return fn()
    except ERRORS as e:
        raise fail(e) from None


@task(help={"seats": "how many seats (seat 1..N)",
            "provider": "docker | libvirt | virtualbox (default: invoke.yaml lab.provider, auto = detect)",
            "parallel": PARALLEL_HELP, "base_subnet": SUBNET_HELP, "bridge_prefix": BRIDGE_HELP, "dir": DIR_HELP,
            "machines_only": "create the machines and stop before provisioning",
            "from_scratch": "docker: start every seat from the plain node image (default: the image "
                            "with the steps' packages preinstalled, built once for the room)"})
def up(c, seats=0, provider=None, parallel=0, base_subnet=None, bridge_prefix=None, dir=None, machines_only=False,
       from_scratch=False):
    """Bring up a room of N independent labs (`--seats N`); run again, it converges."""
    _one_line(lambda: _up(c, room_dir(c, dir), seats, provider, parallel_of(c, parallel), base_subnet, bridge_prefix,
                          machines_only, from_scratch))


@task(help={"seats": "how many seats (seat 1..N)", "base_subnet": SUBNET_HELP, "bridge_prefix": BRIDGE_HELP,
            "dir": DIR_HELP})
def plan(c, seats=0, base_subnet=None, bridge_prefix=None, dir=None):
    """Write only the seats' topology files, create nothing (for seats on your own hosts)."""
    _one_line(lambda: _plan(c, room_dir(c, dir), seats, base_subnet, bridge_prefix))


@task(help={"parallel": PARALLEL_HELP, "dir": DIR_HELP})
def status(c, parallel=0, dir=None):
    """One row per seat: phase, health gate, last drill or exam; then how to enter each seat."""
    _one_line(lambda: _status(room_dir(c, dir), parallel_of(c, parallel)))


@task(help={"parallel": PARALLEL_HELP, "dir": DIR_HELP})
def down(c, parallel=0, dir=None):
    """Remove every seat of the room (their run histories stay)."""
    _one_line(lambda: _down(room_dir(c, dir), parallel_of(c, parallel)))


@task(positional=["seat", "node"],
      help={"seat": "the seat number", "node": "node name or Patroni member name (node1, pg1, ...)",
            "command": "run this command instead of an interactive shell", "dir": DIR_HELP})
def ssh(c, seat, node, command="", dir=None):
    """Open a shell on a node of a seat (or run one command): `invoke workshop.ssh 2 node1`."""
    _one_line(lambda: _ssh(c, room_dir(c, dir), seat, node, command))


# `invoke workshop.status` and the like, from when the actions were the words of one task: the
# collection's default task takes the word. The actions that need no option run as before; the others
# say how they are typed now (their options cannot follow the word: Invoke parses them for this task).
@task(positional=["seat"], help={"seat": "the seat number", "name": "the snapshot (default clean)", "dir": DIR_HELP})
def reset(c, seat, name="clean", dir=None):
    """Bring one seat back to its snapshot in seconds (`invoke workshop.snapshot` first): `invoke workshop.reset 3`."""
    def one() -> None:
        run = R.reset(room_dir(c, dir), seat_number(seat), name, reporter())
        if not run.ok:
            raise R.WorkshopError(f"seat {seat}: not reset (see {run.log}): {run.tail}")
    _one_line(one)


@task(help={"name": "the snapshot (default clean)", "parallel": PARALLEL_HELP, "dir": DIR_HELP})
def snapshot(c, name="clean", parallel=0, dir=None):
    """Save every seat's lab as it is now (its clean state, after `workshop.up`), for `workshop.reset`."""
    def all_seats() -> None:
        runs = R.snapshot_all(room_dir(c, dir), name, reporter(), parallel=parallel_of(c, parallel))
        _summary(runs, f"snapshot {name}")
        failed = [r for r in runs if not r.ok]
        if failed:
            raise R.WorkshopError("seat(s) " + ", ".join(f"{r.seat.number} (see {r.log})" for r in failed)
                                  + " were not saved; `invoke heal` in that seat, then again")
    _one_line(all_seats)


@task(positional=["action"],
      help={"action": "status | down (up, plan and ssh are `invoke workshop.up --seats N`, ...)",
            "parallel": PARALLEL_HELP, "dir": DIR_HELP})
def action(c, action, parallel=0, dir=None):
    """`invoke workshop <action>`: the room's actions by their old spelling (`invoke --list` shows the tasks)."""
    def old() -> None:
        word = _action(action)
        if word == "status":
            _status(room_dir(c, dir), parallel_of(c, parallel))
        elif word == "down":
            _down(room_dir(c, dir), parallel_of(c, parallel))
        else:
            usage = {"up": "workshop.up --seats N", "plan": "workshop.plan --seats N",
                     "ssh": "workshop.ssh <seat> <node>"}[word]
            raise SeatError(f"workshop {word}: it is `invoke {usage}` now")
    _one_line(old)


def _up(c, directory: Path, count: int, provider: str | None, parallel: int, base_subnet: str | None,
        bridge_prefix: str | None, machines_only: bool, from_scratch: bool = False) -> None:
    ws = workshop_settings(c)
    if not count:
        raise SeatError("workshop.up: say how many seats: --seats N")
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise SeatError(f"--seats {count!r}: must be a number") from None
    topo = topology.load()
    room = Room.from_settings(topo, base_subnet or ws.get("base_subnet"), bridge_prefix or ws.get("bridge_prefix"),
                              directory)
    cfg = machines.settings(c)
    if from_scratch:
        cfg["from_scratch"] = True
    name, why = lifecycle.provider_choice(provider, cfg)
    console.print(f"provider {name} ({why})", soft_wrap=True)
    runs = R.up(room, count, name, cfg, reporter(), parallel=parallel, machines_only=machines_only)
    _summary(runs, "up")
    for r in runs:
        print(r.seat.enter())           # never wrapped: trainees paste it
    failed = [r for r in runs if not r.ok]
    if failed:
        raise R.WorkshopError("seat(s) " + ", ".join(f"{r.seat.number} (see {r.log})" for r in failed)
                              + " did not come up; fix and run `invoke workshop.up` again (it converges)")


def _plan(c, directory: Path, count: int, base_subnet: str | None, bridge_prefix: str | None) -> None:
    """Derive and write the seats' topology files, create nothing: for seats on machines of your own
    (the hosts provider, one inventory per seat at the addresses shown; docs/workshop.md)."""
    ws = workshop_settings(c)
    if not count:
        raise SeatError("workshop.plan: say how many seats: --seats N")
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise SeatError(f"--seats {count!r}: must be a number") from None
    room = Room.from_settings(topology.load(), base_subnet or ws.get("base_subnet"),
                              bridge_prefix or ws.get("bridge_prefix"), directory)
    for s in room.seats(count):
        path = write_seat(s, room.base)
        t = s.topology
        print(f"seat {s.number}: {path}  subnet {t.subnet}  "
              + " ".join(f"{n.name}={n.address}" for n in t.nodes)
              + f"  VIPs {', '.join(t.vips.values())}")


def _summary(runs: list[R.SeatRun], what: str) -> None:
    table = Table(title=f"workshop {what}", title_justify="left")
    for col in ("seat", "lab", "subnet", "bridge", "result", "time"):
        table.add_column(col)
    for r in runs:
        t = r.seat.topology
        table.add_row(str(r.seat.number), t.name, str(t.subnet), t.bridge,
                      "ok" if r.ok else f"failed (exit {r.rc}): {r.tail}", f"{r.seconds:g} s")
    console.print(table)


def _down(directory: Path, parallel: int) -> None:
    runs = R.down(directory, reporter(), parallel=parallel)
    if not runs:
        console.print(f"no seats in {directory}: nothing to remove")
        return
    _summary(runs, "down")
    failed = [r for r in runs if not r.ok]
    if failed:
        raise R.WorkshopError("seat(s) " + ", ".join(f"{r.seat.number} (see {r.log})" for r in failed)
                              + " were not removed; run `invoke workshop.down` again")
    console.print(f"every seat is removed; their run histories stay in {directory}/seat*/runs")


def _status(directory: Path, parallel: int) -> None:
    rows = R.status(directory, parallel=parallel)
    if not rows:
        console.print(f"no seats in {directory} (run `invoke workshop.up --seats N`)")
        return
    table = Table(title=f"workshop in {directory}", title_justify="left")
    for col in ("seat", "lab", "subnet", "phase", "healthy", "health gate", "last drill / exam"):
        table.add_column(col)
    for s in rows:
        healthy = {True: "yes", False: "NO", None: "-"}[s.healthy]
        t = s.seat.topology
        table.add_row(str(s.seat.number), t.name, str(t.subnet), s.phase, healthy, s.gate,
                      s.last.line() if s.last else "none yet")
    console.print(table)
    for s in rows:
        print(s.seat.enter())


def _ssh(c, directory: Path, seat: str, node: str, command: str) -> None:
    if not seat or not node:
        raise SeatError("workshop.ssh: give a seat and a node, e.g. `invoke workshop.ssh 1 node1`")
    s = R.find(directory, seat_number(seat))
    # Every lab command reads its instance from these two variables: from here on
    # the machine command acts on the seat (its guard, state and ssh_config).
    os.environ.update(s.env())
    machines.ssh(c, node, command=command)


TASKS = [up, plan, status, down, ssh, reset, snapshot, action]
DEFAULT = action         # `invoke workshop.status` is `invoke workshop.action status`
