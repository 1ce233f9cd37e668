#!/usr/bin/env python3
"""A seat's reset, measured: `invoke snapshot.restore` after a broken drill, against `invoke rebuild`,
in one run on the same host (the figure of docs/workshop.md).

    .venv/bin/python scripts/bench-reset.py [--restores 3]

Needs a provisioned lab (LAB_TOPOLOGY / LAB_DIR choose which); it saves the snapshot `bench`, and
breaks the lab the way a drill gone wrong leaves it before each restore: a switchover (a new leader
and timeline) and Patroni stopped on a replica. The rebuild comes last and leaves a fresh lab.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INVOKE = str(Path(sys.executable).with_name("invoke"))


def invoke(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    p = subprocess.run([INVOKE, *args], cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"))
    took = time.monotonic() - started
    if p.returncode != 0:
        sys.exit(f"bench-reset: `invoke {' '.join(args)}` failed (exit {p.returncode}):\n{(p.stdout + p.stderr)[-2000:]}")
    return took, p.stdout + p.stderr


def break_lab() -> None:
    from labcore.topology import load

    topo = load()
    ssh = ["ssh", "-F", str(Path(os.environ.get("LAB_DIR") or ROOT / ".lab") / "ssh_config")]
    first, second, third = (n.member for n in topo.postgres_nodes[:3])
    ctl = f"sudo -u postgres patronictl -c /etc/patroni switchover {topo.cluster.scope} --candidate {second} --force"
    subprocess.run([*ssh, topo.postgres_nodes[0].name, ctl], capture_output=True, check=True)
    subprocess.run([*ssh, topo.node(third).name, "sudo systemctl stop patroni"], capture_output=True, check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--restores", type=int, default=3)
    n = ap.parse_args().restores
    sys.path.insert(0, str(ROOT))
    saved, _ = invoke("snapshot.save", "--name", "bench")
    restores = []
    for _ in range(n):
        break_lab()
        wall, out = invoke("snapshot.restore", "--name", "bench")
        gated = re.search(r"gated and writable ([\d.]+) s", out)
        restores.append((wall, float(gated.group(1)) if gated else None))
    rebuild, _ = invoke("rebuild")
    print(f"snapshot.save: {saved:.1f} s")
    for i, (wall, gated) in enumerate(restores, 1):
        print(f"restore {i}: gated and writable after {gated} s (command {wall:.1f} s)")
    print(f"rebuild: {rebuild:.1f} s")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
