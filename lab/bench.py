"""The lab's timings against a bare baseline, measured in one run on this machine.

``scripts/bench.sh`` runs this module. It times, on the instance that
``LAB_TOPOLOGY``/``LAB_DIR`` name: a cold ``invoke up`` (no node image, no
package cache), a second ``invoke provision``, the idle memory of the nodes,
``invoke down``, a warm ``invoke up``, ``invoke rebuild``, optionally
``invoke exercise all --auto`` split per drill; then ``scripts/bare-up.sh``
(cold and warm), which brings the same containers to the same cluster with
nothing but ``docker run/exec/cp``. It prints a table with lab/bare ratios and
writes every figure to ``$LAB_DIR/bench/bench-<time>.json``.

``export`` writes what the bare script installs and configures: per node its
packages and every file the steps render (with owner and mode), so both sides
build exactly the same cluster.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from labcore.topology import ROOT, Topology, load

INVOKE = str(Path(sys.executable).with_name("invoke"))
STEP_LINE = re.compile(r"step \d+(?:/\d+)? (\S+) \(article|s (confirm) \(")   # the numbered steps, then the checks after them
STEP_TIME = re.compile(r"^\s*[\d.]+s\s+\(([\d.]+)s\)\s*$")
CHANGES = re.compile(r"provisioning: (\d+) change\(s\)")
MACHINES = re.compile(r"machines ready in ([\d.]+) s")
TARGETS = {"warm_up_s": 45, "rebuild_s": 45, "cold_up_s": 120, "second_provision_s": 10,
           "idle_memory_mb": 1200, "ratio": 1.3}


# --- what the bare script needs ------------------------------------------------------------

def export(topo: Topology, out: Path) -> None:
    """Per node: ``packages`` (one line), ``files.tar`` of every rendered file, ``manifest``
    (path owner group mode, for files and directories), ``roles``; plus ``nodes`` (name address roles)."""
    import tarfile
    import io

    from provision import engine, platforms
    from provision.context import Context, NodeFacts
    from provision.steps import ORDER

    plat = platforms.get("debian12")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    per_node: dict[str, dict[str, Any]] = {n.name: {"packages": [], "files": {}, "dirs": {}} for n in topo.nodes}
    for step in ORDER:
        for node in step.nodes(topo):
            ctx = Context(topo, node, plat, NodeFacts("eth1", True))
            for r in step.resources(ctx):
                mine = per_node[node.name]
                if isinstance(r, engine.Packages):
                    mine["packages"] += [p for p in r.names if p not in mine["packages"]]
                elif isinstance(r, engine.File) and r.content is not None:
                    mine["files"][r.path] = r
                elif isinstance(r, engine.Directory):
                    mine["dirs"][r.path] = r
    lines = []
    for node in topo.nodes:
        mine, d = per_node[node.name], out / node.name
        d.mkdir()
        roles = list(node.roles) + (["etcd"] if node in topo.etcd_nodes else [])
        lines.append(f"{node.name} {node.address} {','.join(roles)}")
        (d / "packages").write_text(" ".join(mine["packages"]) + "\n")
        manifest = [f"{p} {r.owner} {r.group} {r.mode} dir" for p, r in mine["dirs"].items()]
        with tarfile.open(d / "files.tar", "w") as tar:
            for path, f in mine["files"].items():
                data = f.content.encode()
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size, info.mode = len(data), int(f.mode, 8)
                tar.addfile(info, io.BytesIO(data))
                manifest.append(f"{path} {f.owner} {f.group} {f.mode} file")
        (d / "manifest").write_text("\n".join(manifest) + "\n")
    (out / "nodes").write_text("\n".join(lines) + "\n")


# --- running and parsing -------------------------------------------------------------------

def run(args: list[str], log: Path, env: dict[str, str] | None = None, timeout: int = 3600) -> tuple[float, str, int]:
    """Run a command, keep its output in ``log``; return (seconds, output, exit code)."""
    t0 = time.monotonic()
    p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, COLUMNS="200", **(env or {})))
    took = round(time.monotonic() - t0, 1)
    out = p.stdout + p.stderr
    log.write_text(f"$ {' '.join(args)}\n{out}\n(exit {p.returncode}, {took} s)\n")
    return took, out, p.returncode


def step_times(output: str) -> dict[str, float]:
    """Each provisioning step's own time, from ``invoke up``/``provision`` output."""
    times, current = {}, None
    for line in output.splitlines():
        m = STEP_LINE.search(line)
        if m:
            current = m.group(1) or m.group(2)
            continue
        m = STEP_TIME.match(line)
        if m and current:
            times[current] = float(m.group(1))
            current = None
    return times


def up_figures(took: float, output: str) -> dict[str, Any]:
    m, c = MACHINES.search(output), CHANGES.search(output)
    return {"total_s": took, "machines_s": float(m.group(1)) if m else None,
            "changes": int(c.group(1)) if c else None, "steps_s": step_times(output)}


def lab_containers(topo: Topology) -> list[str]:
    return subprocess.run(["docker", "ps", "-q", "--filter", f"label=patroni-lab.lab={topo.name}"],
                          capture_output=True, text=True).stdout.split()


def idle_memory(ids: list[str]) -> dict[str, Any]:
    """Two measures: docker stats' MEM USAGE (cgroup usage minus inactive page cache, what
    `docker stats` shows) and the cgroup's rss (anonymous memory only)."""
    stats = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *ids],
                           capture_output=True, text=True).stdout
    units = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "kB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}
    per_node, rss = {}, 0
    for line in stats.splitlines():
        name, usage = line.split()[0], line.split()[1]
        m = re.match(r"([\d.]+)(\w+)", usage)
        per_node[name] = round(float(m.group(1)) * units[m.group(2)] / 1024 ** 2, 1) if m else None
    for cid in ids:
        full = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", cid], capture_output=True, text=True).stdout.strip()
        for stat in (Path(f"/sys/fs/cgroup/memory/docker/{full}/memory.stat"),
                     Path(f"/sys/fs/cgroup/system.slice/docker-{full}.scope/memory.stat")):
            if stat.exists():
                fields = dict(line.split() for line in stat.read_text().splitlines())
                rss += int(fields.get("total_rss", fields.get("anon", 0)))
                break
    return {"docker_stats_mb": round(sum(v for v in per_node.values() if v), 1), "per_node_mb": per_node,
            "rss_mb": round(rss / 1024 ** 2, 1),
            "measure": "docker stats MEM USAGE summed over the 4 nodes (cgroup usage minus inactive file cache)"}


def drill_split(runs_dir: Path, wall_s: float) -> dict[str, Any]:
    """Per drill of the newest ``all`` run, the runner's own phases (result.json ``phases_s``):
    gate, setup, fault window, restore. The observed time is the fault window, or for a drill
    without a fault (e.g. rest-api) its own steps; the rest of ``wall_s`` is overhead."""
    folders = sorted(p for p in runs_dir.glob("*-all") if p.is_dir()) if runs_dir.exists() else []
    if not folders:
        return {"note": f"no run folder under {runs_dir}"}
    out: dict[str, Any] = {"run": folders[-1].name, "drills": {}}
    for path in sorted(folders[-1].glob("*/result.json")):
        res = json.loads(path.read_text())
        ph = res.get("phases_s") or {}
        observed = ph.get("fault_window") if ph.get("fault_window") is not None else ph.get("setup")
        out["drills"][res["drill"]] = {"total_s": res.get("duration_s"), "gate_s": ph.get("gate"),
                                       "setup_s": ph.get("setup"), "fault_window_s": ph.get("fault_window"),
                                       "restore_s": ph.get("restore"), "observed_s": observed}
    observed = sum(d["observed_s"] or 0 for d in out["drills"].values())
    out["observed_s"] = round(observed, 1)
    out["non_fault_window_share"] = round(1 - observed / wall_s, 3) if wall_s else None
    drills = out["drills"].values()
    out["gate_s"] = round(sum(d["gate_s"] or 0 for d in drills), 1)
    # a drill without a fault observes during its setup: that time is counted as observed, not twice
    out["setup_s"] = round(sum(d["setup_s"] or 0 for d in drills if d["fault_window_s"] is not None), 1)
    out["restore_s"] = round(sum(d["restore_s"] or 0 for d in drills), 1)
    return out


# --- the bench -------------------------------------------------------------------------------

def remove_images(node_image: str) -> None:
    """The cold start: no node image (plain or preinstalled) of this bench's repository."""
    repo = node_image.rpartition(":")[0]
    if repo == "patroni-lab/node":
        # Every lab instance on the host shares that repository: never remove it under them.
        raise SystemExit("bench: set LAB_NODE_IMAGE to a repository of the bench's own "
                         "(scripts/bench.sh does: patroni-lab/bench-<lab name>:bookworm)")
    refs = subprocess.run(["docker", "images", repo, "--format", "{{.Repository}}:{{.Tag}}"],
                          capture_output=True, text=True).stdout.split()
    if refs:
        subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True)


def bench(with_drills: bool, skip_bare: bool) -> dict[str, Any]:
    from lab.providers import image
    from labcore.state import lab_dir
    from provision import wheelhouse

    topo = load()
    out_dir = lab_dir() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    logs = out_dir / "logs"
    logs.mkdir(exist_ok=True)
    cache = lab_dir() / "cache"
    say = lambda m: print(f"[bench {time.strftime('%H:%M:%S')}] {m}", flush=True)
    load_avg = lambda: os.getloadavg()[0]
    res: dict[str, Any] = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "lab": topo.name, "node_image": image.NODE_IMAGE,
                           "other_containers": len(subprocess.run(["docker", "ps", "-q"], capture_output=True,
                                                                  text=True).stdout.split()),
                           "load": {}, "lab_runs": {}, "bare": {}}

    def lab_step(key: str, *args: str) -> tuple[float, str]:
        res["load"][key] = round(load_avg(), 2)
        say(f"{key}: invoke {' '.join(args)} (load {res['load'][key]})")
        took, output, rc = run([INVOKE, *args], logs / f"{key}.log")
        if rc != 0:
            raise SystemExit(f"bench: `invoke {' '.join(args)}` failed (exit {rc}); see {logs / (key + '.log')}")
        say(f"{key}: {took} s")
        return took, output

    run([INVOKE, "down"], logs / "down-before.log")
    # The Debian base (mmdebstrap) is a host-wide cache that both the lab and the bare script
    # start from: built here if missing, timed on its own, so that both cold runs start equal.
    started = time.monotonic()
    _base_image()
    res["base_image_s"] = round(time.monotonic() - started, 1)
    say(f"base image: {res['base_image_s']} s (0 when it was already there; not part of either cold run)")
    remove_images(image.NODE_IMAGE)
    shutil.rmtree(cache, ignore_errors=True)
    took, output = lab_step("cold_up", "up")
    res["lab_runs"]["cold_up"] = up_figures(took, output)
    took, output = lab_step("second_provision", "provision")
    res["lab_runs"]["second_provision"] = up_figures(took, output)
    res["idle_memory"] = idle_memory(lab_containers(topo))
    took, _ = lab_step("down", "down")
    res["lab_runs"]["down"] = {"total_s": took}
    took, output = lab_step("warm_up", "up")
    res["lab_runs"]["warm_up"] = up_figures(took, output)
    took, output = lab_step("rebuild", "rebuild")
    res["lab_runs"]["rebuild"] = up_figures(took, output)
    if with_drills:
        took, output = lab_step("drills", "exercise", "all", "--auto")
        res["drills"] = {"total_s": took, **drill_split(lab_dir() / "runs", took)}
    run([INVOKE, "down"], logs / "down-after.log")

    if not skip_bare:
        files = out_dir / "bare-files"
        export(topo, files)
        env = {"BARE_FILES": str(files), "BARE_NAME": f"{topo.name}-bare", "BARE_SUBNET": str(topo.subnet),
               "BARE_GATEWAY": topo.gateway, "BARE_BRIDGE": topo.bridge, "BARE_APT_CACHE": str(cache / "bare-apt"),
               "BARE_WHEELHOUSE": str(wheelhouse.ensure("3.11")), "BARE_IMAGE": _base_image()}
        shutil.rmtree(cache / "bare-apt", ignore_errors=True)
        for kind in ("cold", "warm"):
            res["load"][f"bare_{kind}"] = round(load_avg(), 2)
            say(f"bare_{kind}: scripts/bare-up.sh (load {res['load'][f'bare_{kind}']})")
            took, output, rc = run(["scripts/bare-up.sh", "up"], logs / f"bare_{kind}.log", env=env)
            run(["scripts/bare-up.sh", "down"], logs / f"bare_{kind}-down.log", env=env)
            if rc != 0:
                raise SystemExit(f"bench: bare-up.sh failed (exit {rc}); see {logs / f'bare_{kind}.log'}")
            res["bare"][f"{kind}_up_s"] = took
            say(f"bare_{kind}: {took} s")

    res["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    res["ratios"] = ratios(res)
    res["targets"] = verdicts(res)
    path = out_dir / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))
    print(f"\nfigures: {path}")
    return res


def _base_image() -> str:
    from lab.providers import image

    return image.base_image(lambda m: print(m))


def ratios(res: dict[str, Any]) -> dict[str, float | None]:
    lab, bare = res["lab_runs"], res.get("bare") or {}
    r = lambda a, b: round(a / b, 2) if a and b else None
    return {"warm_up": r(lab["warm_up"]["total_s"], bare.get("warm_up_s")),
            "rebuild": r(lab["rebuild"]["total_s"], bare.get("warm_up_s")),
            "cold_up": r(lab["cold_up"]["total_s"], bare.get("cold_up_s"))}


def verdicts(res: dict[str, Any]) -> dict[str, bool | None]:
    lab, rat, t = res["lab_runs"], res["ratios"], TARGETS
    ok = lambda v, bound: None if v is None else v <= bound
    out = {
        "warm_up <= 45 s": ok(lab["warm_up"]["total_s"], t["warm_up_s"]),
        "warm_up <= 1.3x bare warm": ok(rat["warm_up"], t["ratio"]),
        "rebuild <= 45 s": ok(lab["rebuild"]["total_s"], t["rebuild_s"]),
        "rebuild <= 1.3x bare warm": ok(rat["rebuild"], t["ratio"]),
        "cold_up <= 120 s": ok(lab["cold_up"]["total_s"], t["cold_up_s"]),
        "cold_up <= 1.3x bare cold": ok(rat["cold_up"], t["ratio"]),
        "second provision: 0 changes": lab["second_provision"]["changes"] == 0,
        "second provision <= 10 s": ok(lab["second_provision"]["total_s"], t["second_provision_s"]),
        "idle lab <= 1.2 GB": ok(res["idle_memory"]["docker_stats_mb"], t["idle_memory_mb"]),
    }
    if "drills" in res and res["drills"].get("non_fault_window_share") is not None:
        out["drills: non-fault-window share <= 25 %"] = res["drills"]["non_fault_window_share"] <= 0.25
    return out


def table(res: dict[str, Any]) -> str:
    lab, bare = res["lab_runs"], res.get("bare") or {}
    rows = ["| run | total s | machines s | provisioning changes | bare s | lab/bare | load |",
            "|---|---|---|---|---|---|---|"]
    pairs = {"cold_up": bare.get("cold_up_s"), "warm_up": bare.get("warm_up_s"), "rebuild": bare.get("warm_up_s")}
    for key in ("cold_up", "second_provision", "down", "warm_up", "rebuild"):
        f = lab[key]
        b = pairs.get(key)
        rows.append(f"| {key} | {f['total_s']} | {f.get('machines_s') or '-'} | {f.get('changes', '-')} | "
                    f"{b or '-'} | {res['ratios'].get(key) or '-'} | {res['load'].get(key, '-')} |")
    steps = ["", "| step | cold s | warm s | rebuild s | second provision s |", "|---|---|---|---|---|"]
    for name in lab["cold_up"]["steps_s"]:
        steps.append(f"| {name} | " + " | ".join(str(lab[k]["steps_s"].get(name, "-"))
                                                 for k in ("cold_up", "warm_up", "rebuild", "second_provision")) + " |")
    mem = res["idle_memory"]
    extra = [f"\nidle memory: {mem['docker_stats_mb']} MB ({mem['measure']}); anonymous rss {mem['rss_mb']} MB",
             f"Debian base image (host-wide cache, before both cold runs): {res.get('base_image_s', '-')} s",
             f"other containers running on the host at start: {res['other_containers']}"]
    if "drills" in res:
        d = res["drills"]
        extra.append(f"drills: {d.get('total_s')} s wall, of which observed (fault windows) {d.get('observed_s')} s, "
                     f"gates {d.get('gate_s')} s, setups {d.get('setup_s')} s, restores {d.get('restore_s')} s; "
                     f"non-fault-window share {d.get('non_fault_window_share')}")
        extra += [f"  {k}: gate {v['gate_s']} s, setup {v['setup_s']} s, fault window {v['fault_window_s']} s, "
                  f"restore {v['restore_s']} s" for k, v in d.get("drills", {}).items()]
    extra.append("targets: " + "; ".join(f"{k}: {'met' if v else ('n/a' if v is None else 'NOT met')}"
                                        for k, v in res["targets"].items()))
    return "\n".join(rows + steps + extra)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench.sh", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    b = sub.add_parser("run", help="the whole bench (default)")
    b.add_argument("--drills", action="store_true", help="also time `invoke exercise all --auto` (~20 min)")
    b.add_argument("--no-bare", action="store_true", help="skip the bare baseline")
    e = sub.add_parser("export", help="write what scripts/bare-up.sh installs and configures")
    e.add_argument("dir", type=Path)
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv or ["run"])
    if args.cmd == "export":
        export(load(), args.dir)
        return 0
    bench(args.drills, args.no_bare)
    return 0


if __name__ == "__main__":
    sys.exit(main())
