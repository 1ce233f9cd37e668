"""The room: every seat brought up side by side, their status, and their removal.

Each seat is driven through the lab's own commands (``invoke up``, ``invoke
down``) in a child process whose environment names the seat (LAB_TOPOLOGY,
LAB_DIR): the lab reads both from the environment, so separate processes are
what keeps seats from seeing each other's state. At most ``parallel`` seats
are brought up at once (each provisioning keeps a core busy).

What seats share, on purpose: the docker node image (built once, before any
seat starts), Vagrant boxes (each seat's Vagrant home links the user's), the
Patroni wheelhouse, and the packages already downloaded: the room keeps one
package cache (``<room>/cache/apt``, seeded from the lab's and kept by
``down``); each seat's apt cache starts as hard links to it and gives back
what it downloaded, so seats neither download a package twice nor hold one apt
lock between them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from lab.providers import image, vagrant
from labcore import guard
from labcore.exitcodes import Refusal
from lab.workshop import history
from lab.workshop.seats import Room, Seat, SeatError, existing, write

Report = Callable[[str], None]
RECORD = "workshop.json"
SEAT_PROVIDERS = ("docker", "libvirt", "virtualbox")
INVOKE = str(Path(sys.executable).with_name("invoke"))
KEEP_ON_DOWN = ("runs",)     # a seat's run history outlives it: the day's scores
ROOM_CACHE = "cache/apt"


class WorkshopError(RuntimeError):
    """A room command that failed; one line, says what to do."""


class WorkshopRefusal(WorkshopError, Refusal):
    """A room command refused before changing anything (exit 2)."""


@dataclass
class SeatRun:
    seat: Seat
    rc: int
    seconds: float
    log: Path
    tail: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0


def default_parallel() -> int:
    """One seat per core: provisioning a seat keeps about one core busy."""
    return max(1, os.cpu_count() or 1)


# --- the record of the room --------------------------------------------------------

def read_record(directory: Path) -> dict[str, Any]:
    p = directory / RECORD
    try:
        return json.loads(p.read_text()) if p.exists() else {}
    except ValueError:
        raise WorkshopError(f"{p} is unreadable; remove it (the seats are re-derived from the topology)") from None


def write_record(room: Room, provider: str, count: int) -> None:
    room.dir.mkdir(parents=True, exist_ok=True)
    data = {"topology": str(room.base), "base_subnet": str(room.base_subnet),
            "bridge_prefix": room.bridge_prefix, "provider": provider, "seats": count}
    (room.dir / RECORD).write_text(json.dumps(data, indent=2) + "\n")


def same_derivation(room: Room, record: Mapping[str, Any]) -> str | None:
    """Why the existing room was derived differently from ``room`` (None if it was not)."""
    for key, mine in (("topology", str(room.base)), ("base_subnet", str(room.base_subnet)),
                      ("bridge_prefix", room.bridge_prefix)):
        if record.get(key) not in (None, mine):
            return f"{key} {record[key]} (asked: {mine})"
    return None


# --- checks before anything is created ----------------------------------------------

def check_host(seats: list[Seat]) -> None:
    """Refuse seats whose subnet the host already routes through an interface other than their bridge."""
    for s in seats:
        for dst, dev in guard.routes_overlapping(s.topology.subnet):
            if dev != s.topology.bridge:
                raise WorkshopRefusal(f"seat {s.number}: {s.topology.subnet} is already routed via {dev} ({dst}); "
                                    "choose another --base-subnet")


def plan_up(room: Room, count: int, provider: str) -> list[Seat]:
    """The seats ``up`` would create, all checked; nothing is written."""
    if provider not in SEAT_PROVIDERS:
        raise WorkshopRefusal(f"provider {provider}: seats are created with {', '.join(SEAT_PROVIDERS)}; "
                            "for seats on your own hosts give each seat its own topology and inventory "
                            "(docs/workshop.md)")
    seats = room.seats(count)
    record = read_record(room.dir)
    why = same_derivation(room, record)
    if why:
        raise WorkshopRefusal(f"the room in {room.dir} was derived with {why}; "
                            "run `invoke workshop.down` first or use another --dir")
    if record.get("provider") not in (None, provider):
        raise WorkshopRefusal(f"the room in {room.dir} runs on {record['provider']}, not {provider}; "
                            "run `invoke workshop.down` first")
    more = [s.number for s in existing(room.dir) if s.number > count]
    if more:
        raise WorkshopRefusal(f"the room already has seat(s) {', '.join(map(str, more))}: ask for --seats "
                            f"{max(more)} or run `invoke workshop.down` first")
    check_host(seats)
    return seats


# --- preparing seats ------------------------------------------------------------------

def link_packages(src: Path, dst_cache: Path) -> int:
    """Hard-link the .deb files of ``src/<node>/`` missing from ``dst_cache/<node>/``; return how many."""
    linked = 0
    if not src.is_dir() or src.resolve() == dst_cache.resolve():
        return 0
    for deb in src.glob("*/*.deb"):
        dst = dst_cache / deb.parent.name / deb.name
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(deb, dst)
        except FileExistsError:  # another seat gave it back at the same moment
            continue
        except OSError:          # another filesystem: copying is still cheaper than downloading
            shutil.copy2(deb, dst)
        linked += 1
    return linked


def prepare(seats: list[Seat], room: Room, provider: str, settings: Mapping[str, Any], report: Report) -> None:
    """Write each seat's topology, Vagrant home and package cache; build the node image once.

    The image is made here, before any seat starts: seats building it at once would each
    start the same build (and remove each other's build container)."""
    if provider == "docker":
        # one image per Debian release the seats' PostgreSQL needs (all seats derive from one file: one)
        for topo in {s.topology.postgres_release.suite: s.topology for s in seats}.values():
            vagrant.VagrantProvider(provider, settings).node_image_ref(topo, report)
    cache = room.dir / ROOM_CACHE
    link_packages(vagrant.apt_cache(settings), cache)
    for s in seats:
        write(s, room.base)
        vagrant.make_seat_home(s.vagrant_home)
        n = link_packages(cache, seat_cache(s))
        if n:
            report(f"seat {s.number}: {n} packages linked from {cache}")


# --- running the lab's commands in a seat ------------------------------------------------

def seat_cache(seat: Seat) -> Path:
    return seat.dir / "cache" / "apt"


def seat_env(seat: Seat) -> dict[str, str]:
    env = dict(os.environ)
    env.update(seat.env())
    # Each seat its own package cache (seeded by prepare): one apt lock per seat.
    env["INVOKE_LAB_APT_CACHE"] = str(seat_cache(seat))
    env.setdefault("COLUMNS", "160")
    return env


def run_in_seat(seat: Seat, args: list[str], report: Report, log_name: str,
                timeout: float | None = None) -> SeatRun:
    """``invoke <args>`` in the seat's environment; its output goes to the seat's log and to ``report``."""
    seat.dir.mkdir(parents=True, exist_ok=True)
    log = seat.dir / log_name
    t0 = time.monotonic()
    lines: list[str] = []
    with log.open("w") as f:
        proc = subprocess.Popen([INVOKE, *args], cwd=vagrant.ROOT, env=seat_env(seat), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdout
        killer = threading.Timer(timeout, proc.kill) if timeout else None
        if killer:
            killer.start()
        try:
            for line in proc.stdout:
                f.write(line)
                lines.append(line.rstrip())
                report(f"seat {seat.number}: {line.rstrip()}")
            rc = proc.wait()
        finally:
            if killer:
                killer.cancel()
    tail = "; ".join(l for l in lines[-3:] if l.strip())
    return SeatRun(seat, rc, round(time.monotonic() - t0, 1), log, tail)


def in_parallel(seats: list[Seat], parallel: int, job: Callable[[Seat], SeatRun]) -> list[SeatRun]:
    """``job`` for every seat, at most ``parallel`` at once; results in seat order."""
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(seats)))) as pool:
        return list(pool.map(job, seats))


def up(room: Room, count: int, provider: str, settings: Mapping[str, Any], report: Report, *,
       parallel: int, machines_only: bool = False) -> list[SeatRun]:
    seats = plan_up(room, count, provider)
    prepare(seats, room, provider, settings, report)
    write_record(room, provider, count)
    args = (["up", "--provider", provider] + (["--machines-only"] if machines_only else [])
            + (["--from-scratch"] if settings.get("from_scratch") else []))
    report(f"bringing up {len(seats)} seat(s), at most {parallel} at once")

    def one(s: Seat) -> SeatRun:
        run = run_in_seat(s, args, report, "up.log")
        link_packages(seat_cache(s), room.dir / ROOM_CACHE)     # the next seat or room starts warm
        return run
    return in_parallel(seats, parallel, one)


def down(directory: Path, report: Report, *, parallel: int) -> list[SeatRun]:
    """Remove every seat of the room (machines, networks, state); keep their run history."""
    seats = existing(directory)
    provider = read_record(directory).get("provider")
    args = ["down"] + (["--provider", provider] if provider else [])
    runs = in_parallel(seats, parallel, lambda s: run_in_seat(s, args, report, "down.log"))
    for r in runs:
        if r.ok:
            for item in r.seat.dir.iterdir():
                if item.name in KEEP_ON_DOWN:
                    continue
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item, ignore_errors=True)
                else:
                    item.unlink(missing_ok=True)
    if runs and all(r.ok for r in runs):
        (directory / RECORD).unlink(missing_ok=True)
    return runs


def reset(directory: Path, k: int, snapshot_name: str, report: Report) -> SeatRun:
    """Seat ``k`` back to its snapshot (``invoke snapshot.restore`` in the seat): seconds, not a rebuild."""
    return run_in_seat(find(directory, k), ["snapshot.restore", "--name", snapshot_name], report, "reset.log")


def snapshot_all(directory: Path, snapshot_name: str, report: Report, *, parallel: int) -> list[SeatRun]:
    """Every seat's clean state saved (``invoke snapshot.save`` in each), for later resets."""
    return in_parallel(existing(directory), parallel,
                       lambda s: run_in_seat(s, ["snapshot.save", "--name", snapshot_name], report, "snapshot.log"))


# --- status -------------------------------------------------------------------------------

@dataclass
class SeatStatus:
    seat: Seat
    phase: str
    healthy: bool | None            # None: not asked (the seat is not provisioned) or no answer
    gate: str                       # what is off, or the leader
    last: history.LastRun | None


def _phase(seat: Seat) -> str:
    try:
        return json.loads((seat.dir / "state.json").read_text()).get("phase", "absent")
    except (OSError, ValueError):
        return "absent"


def gate(seat: Seat, timeout: float = 120) -> tuple[bool | None, str]:
    """The drills' health gate in the seat: ``invoke status --check`` in the seat's environment.
    (True, summary) healthy; (False, what is off); (None, why it could not look)."""
    try:
        p = subprocess.run([INVOKE, "status", "--check"], cwd=vagrant.ROOT, env=seat_env(seat),
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"no answer within {timeout:.0f} s"
    out = [l.strip() for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    if p.returncode == 0:
        return True, out[-1] if out else "healthy"
    if p.returncode == 1 and out:
        return False, "; ".join(out)
    return None, out[-1] if out else f"status --check exited {p.returncode}"


def status(directory: Path, *, parallel: int) -> list[SeatStatus]:
    seats = existing(directory)

    def one(s: Seat) -> SeatStatus:
        phase = _phase(s)
        healthy, summary = gate(s) if phase == "provisioned" else (None, f"lab is {phase}")
        return SeatStatus(s, phase, healthy, summary, history.last_run(s.dir))

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(seats) or 1))) as pool:
        return list(pool.map(one, seats))


def find(directory: Path, k: int) -> Seat:
    seats = existing(directory)
    for s in seats:
        if s.number == k:
            return s
    have = ", ".join(str(s.number) for s in seats) or "none"
    raise SeatError(f"seat {k}: no such seat in {directory} (seats: {have}); run `invoke workshop.up` first")
