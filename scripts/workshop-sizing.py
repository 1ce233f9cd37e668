#!/usr/bin/env python3
"""How many seats a host holds: measured here, for 1 and 2 seats, with the lab's own commands.

    flock /tmp/plab-live.lock .venv/bin/python scripts/workshop-sizing.py [--ram-gib 64 --cores 16]

Steps (a room of its own in --dir, seats derived from topology.yml at --base-subnet):
  1. `invoke workshop.up --seats 1`                 -> time for one seat; idle memory and CPU of one seat
  2. `invoke workshop.up --seats 2 --parallel 1`    -> seat 2 after seat 1 (one after the other)
                                                       idle memory and CPU per seat with two seats
  3. an exam in seat 1 for --load-s seconds         -> CPU of a seat whose trainee is taking an exam
                                                       (watch and writer running), then --give-up
  4. `invoke workshop.down`, `invoke workshop.up --seats 2 --parallel 2` -> both at once
  5. `invoke workshop.down`
Idle memory is docker stats' MEM USAGE of the seat's containers (lab.bench.idle_memory); CPU is
the containers' cgroup CPU time over a window (cpuacct), plus the exam's background process.
Prints the figures, the formula and the seats for the host size given; writes them as JSON
beside the room. It creates and removes seats: never point --dir at a room in use.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.bench import idle_memory, run  # noqa: E402
from lab.workshop.seats import existing  # noqa: E402

INVOKE = str(Path(sys.executable).with_name("invoke"))
HOST_RESERVE_MB = 2048          # the host's own system, the trainer's shell and browser
CPU_HEADROOM = 0.75             # use at most 3/4 of the cores: the watch's 0.5 s cadence needs slack
CLK_TCK = os.sysconf("SC_CLK_TCK")


def seat_ids(name: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"label=patroni-lab.lab={name}"],
                          capture_output=True, text=True).stdout.split()


def cpu_seconds(ids: list[str], pids: list[int] = ()) -> float:
    """CPU time used so far by these containers (cgroup v1 cpuacct, or v2 cpu.stat) and processes."""
    total = 0.0
    for cid in ids:
        for path in (Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage"),
                     Path(f"/sys/fs/cgroup/cpu,cpuacct/docker/{cid}/cpuacct.usage")):
            if path.exists():
                total += int(path.read_text()) / 1e9
                break
        else:
            stat = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
            if stat.exists():
                total += int(dict(ln.split() for ln in stat.read_text().splitlines())["usage_usec"]) / 1e6
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError):
            pass
    return total


def cores_used(groups: dict[str, tuple[list[str], list[int]]], seconds: float) -> dict[str, float]:
    """Average cores each group used over ``seconds`` (sampled at both ends)."""
    before = {k: cpu_seconds(*v) for k, v in groups.items()}
    t0 = time.monotonic()
    time.sleep(seconds)      # a measuring window, not a wait for something to happen
    took = time.monotonic() - t0
    return {k: round((cpu_seconds(*v) - before[k]) / took, 3) for k, v in groups.items()}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def workshop(room: Path, log: Path, action: str, *args: str) -> float:
    took, out, rc = run([INVOKE, f"workshop.{action}", *args, "--dir", str(room)], log, timeout=3600)
    if rc != 0:
        sys.exit(f"workshop-sizing: `invoke workshop.{action} {' '.join(args)}` failed (exit {rc}); see {log}")
    return took


def idle(room: Path, settle: float, window: float) -> dict[str, dict[str, float]]:
    """Per seat: memory (MB) and CPU (cores) after ``settle`` seconds of quiet."""
    time.sleep(settle)       # let the provisioning's last restarts calm down before measuring "idle"
    seats = {f"seat{s.number}": seat_ids(s.topology.name) for s in existing(room)}
    cpu = cores_used({k: (ids, []) for k, ids in seats.items()}, window)
    return {k: {"memory_mb": idle_memory(ids)["docker_stats_mb"], "cpu_cores": cpu[k]} for k, ids in seats.items()}


def exam_load(room: Path, log: Path, window: float) -> dict[str, float]:
    """An exam in seat 1 (a replica cut from etcd; the writer and the watch run): CPU of seat 1
    (containers + the background process) against seat 2 left idle, then --give-up."""
    seat = next(s for s in existing(room) if s.number == 1)
    env = {"LAB_TOPOLOGY": str(seat.topology_path), "LAB_DIR": str(seat.dir)}
    took, out, rc = run([INVOKE, "exercise", "--exam", "--from", "replica-etcd-cut", "--seed", "1"], log, env=env)
    if rc != 0:
        sys.exit(f"workshop-sizing: the exam in seat 1 did not start (exit {rc}); see {log}")
    folder = sorted((seat.dir / "runs").glob("*-exam*"))[-1]
    pid = json.loads((folder / "exam.json").read_text())["pid"]
    other = [s for s in existing(room) if s.number == 2]
    groups = {"exam_seat": (seat_ids(seat.topology.name), [pid])}
    if other:
        groups["idle_seat"] = (seat_ids(other[0].topology.name), [])
    cpu = cores_used(groups, window)
    background = rss_mb(pid)
    run([INVOKE, "exercise", "--give-up"], log.with_name("exam-give-up.log"), env=env)
    return {"exam_seat_cpu_cores": cpu["exam_seat"], "idle_seat_cpu_cores": cpu.get("idle_seat"),
            "background_process_rss_mb": background, "exam_start_s": took}


def capacity(ram_gib: float, cores: int, mem_mb: float, cpu_cores: float) -> dict[str, int]:
    by_ram = math.floor((ram_gib * 1024 - HOST_RESERVE_MB) / mem_mb) if mem_mb else 0
    by_cpu = math.floor(cores * CPU_HEADROOM / cpu_cores) if cpu_cores else 0
    return {"by_memory": by_ram, "by_cpu": by_cpu, "seats": max(0, min(by_ram, by_cpu))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(ROOT / ".workshop-sizing"), help="the sizing room's folder")
    ap.add_argument("--base-subnet", default="192.168.240.0/24")
    ap.add_argument("--bridge-prefix", default="plabz")
    ap.add_argument("--ram-gib", type=float, default=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3)
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--settle-s", type=float, default=20.0)
    ap.add_argument("--window-s", type=float, default=30.0)
    ap.add_argument("--load-s", type=float, default=30.0)
    a = ap.parse_args()
    room = Path(a.dir).resolve()
    logs = room.with_name(room.name + "-logs")
    logs.mkdir(parents=True, exist_ok=True)
    derive = ["--base-subnet", a.base_subnet, "--bridge-prefix", a.bridge_prefix]
    res: dict = {"host": {"cores": os.cpu_count(), "ram_gib": round(os.sysconf("SC_PAGE_SIZE")
                                                                     * os.sysconf("SC_PHYS_PAGES") / 1024 ** 3, 1)}}
    workshop(room, logs / "down-0.log", "down")
    try:
        res["up_1_seat_s"] = workshop(room, logs / "up-1.log", "up", "--seats", "1", *derive)
        res["idle_1_seat"] = idle(room, a.settle_s, a.window_s)
        res["up_2nd_seat_after_1st_s"] = workshop(room, logs / "up-2-seq.log", "up", "--seats", "2",
                                                  "--parallel", "1", *derive)
        res["up_2_seats_one_after_other_s"] = round(res["up_1_seat_s"] + res["up_2nd_seat_after_1st_s"], 1)
        res["idle_2_seats"] = idle(room, a.settle_s, a.window_s)
        res["exam"] = exam_load(room, logs / "exam.log", a.load_s)
        workshop(room, logs / "down-1.log", "down")
        res["up_2_seats_parallel_s"] = workshop(room, logs / "up-2-par.log", "up", "--seats", "2", "--parallel", "2",
                                                *derive)
    finally:
        workshop(room, logs / "down-2.log", "down")      # nothing of the sizing room stays, even on failure

    two = res["idle_2_seats"].values()
    mem = round(max(v["memory_mb"] for v in two) + res["exam"]["background_process_rss_mb"], 1)
    cpu_idle = round(max(v["cpu_cores"] for v in two), 3)
    cpu_exam = res["exam"]["exam_seat_cpu_cores"]
    res["per_seat"] = {"memory_mb": mem, "idle_cpu_cores": cpu_idle, "exam_cpu_cores": cpu_exam}
    here = (res["host"]["ram_gib"], res["host"]["cores"])
    res["capacity"] = {}
    for ram, cores in dict.fromkeys([(a.ram_gib, a.cores), here, (16, 4), (32, 8), (64, 16), (128, 32)]):
        res["capacity"][f"{ram:g} GiB / {cores} cores"] = capacity(ram, cores, mem, cpu_exam)
    (room.with_name(room.name + ".json")).write_text(json.dumps(res, indent=2) + "\n")

    i1, i2 = res["idle_1_seat"], res["idle_2_seats"]
    print(f"host: {res['host']['cores']} cores, {res['host']['ram_gib']} GiB RAM")
    print("idle, 1 seat:  " + "; ".join(f"{k} {v['memory_mb']} MB, {v['cpu_cores']} cores" for k, v in i1.items()))
    print("idle, 2 seats: " + "; ".join(f"{k} {v['memory_mb']} MB, {v['cpu_cores']} cores" for k, v in i2.items()))
    e = res["exam"]
    print(f"during an exam: the seat {e['exam_seat_cpu_cores']} cores (containers + background process of "
          f"{e['background_process_rss_mb']} MB), an idle seat beside it {e['idle_seat_cpu_cores']} cores")
    print(f"up, 1 seat: {res['up_1_seat_s']} s; 2 seats one after the other: {res['up_2_seats_one_after_other_s']} s "
          f"(seat 2 added in {res['up_2nd_seat_after_1st_s']} s); 2 seats in parallel: {res['up_2_seats_parallel_s']} s")
    print(f"per seat: {mem} MB memory (idle + the exam's background process), {cpu_exam} cores during an exam")
    print(f"formula: seats = min(floor((RAM_MB - {HOST_RESERVE_MB}) / {mem}), "
          f"floor(cores x {CPU_HEADROOM} / {cpu_exam}))")
    for size, c in res["capacity"].items():
        print(f"  {size}: {c['seats']} seats (memory allows {c['by_memory']}, CPU {c['by_cpu']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
