"""Snapshots of a provisioned lab: save its state once, bring it back in seconds (a workshop seat's reset).

What a snapshot holds, per node, taken with the cluster stopped in a consistent order: PostgreSQL's
data directory, etcd's data directory, Patroni's configuration directory and its unit drop-ins. It
lives on the node itself (``/var/lib/patroni-lab/snapshots/<name>``), so saving and restoring copy on
the node's own disk; the host keeps a manifest (``$LAB_DIR/snapshots/<name>.json``): which topology
and which machines it was taken of, the leaders and timelines it holds.

Why the clusters are paused: restarted by Patroni, a stopped leader comes back as a replica and is
promoted again, on a new timeline. Paused (article §6, ``patronictl pause``), Patroni leaves
PostgreSQL to the lab, which stops it and starts it again with the command line Patroni gave it
(``postmaster.opts``): the same leader on the same timeline, its slots and etcd's keys as they were.

The pause ends in the DCS before etcd stops, so the state saved is unpaused: started again, Patroni
finds each PostgreSQL running in its role and keeps it. Restore first ends whatever a drill left
running (faults' undo commands, every Patroni and PostgreSQL), puts the files back, starts etcd,
each primary before its replicas, then Patroni, and moves the read-write VIP to the leader by the
callback Patroni itself uses.
The health gate after it is the caller's (``invoke snapshot restore`` runs the drills' gate).
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from lab.exercises.kit import ctl
from lab.exercises.kit.actions import fault_undo_commands
from labcore import poll, remote
from labcore import state as lab_state
from labcore.exitcodes import Refusal
from labcore.topology import Node, Topology
from provision import platforms
from provision.context import FENCER_UNIT, PATRONI_CONF_DIR, PATRONI_DROPINS, VIP_CALLBACK

ON_NODE = "/var/lib/patroni-lab/snapshots"
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
DEFAULT = "clean"
Report = Callable[[str], None]


class SnapshotError(Refusal, RuntimeError):
    """A snapshot that cannot be saved, restored or found; the message is one line."""


@dataclass
class Manifest:
    name: str
    lab: str
    topology: str                       # digest of what the snapshot depends on in the topology
    machines: dict[str, str]            # node -> /etc/machine-id when saved
    leaders: dict[str, str]             # scope -> its leader (the standby cluster's too)
    timelines: dict[str, int]           # member -> timeline
    platform: str
    created: str = ""
    took_s: float = 0.0
    nodes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def topology_digest(topo: Topology) -> str:
    """What a snapshot's files depend on: nodes, addresses, members, roles, scopes, data directory."""
    parts = [topo.name, str(topo.subnet), topo.cluster.scope, topo.cluster.standby_scope, topo.cluster.data_dir,
             *(f"{n.name}={n.address}/{n.member}/{','.join(n.roles)}/{n.etcd}" for n in topo.nodes)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise SnapshotError(f"snapshot name {name!r}: use 1-40 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    return name


def manifest_path(name: str) -> Path:
    return lab_state.lab_dir() / "snapshots" / f"{check_name(name)}.json"


def manifests() -> list[Manifest]:
    folder = lab_state.lab_dir(create=False) / "snapshots"
    return [Manifest(**json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def load_manifest(name: str) -> Manifest:
    path = manifest_path(name)
    if not path.exists():
        known = ", ".join(m.name for m in manifests()) or "none yet"
        raise SnapshotError(f"no snapshot {name!r} of this lab (saved: {known}); take one with `invoke snapshot.save --name {name}`")
    return Manifest(**json.loads(path.read_text()))


# --- what runs on the nodes (pure: text) ---------------------------------------------------

def members_of(topo: Topology) -> list[Node]:
    """The nodes that run Patroni: the cluster's and the standby cluster's."""
    return topo.postgres_nodes + ([topo.standby_node] if topo.standby_node else [])


def paths(topo: Topology, node: Node, plat: platforms.Platform) -> dict[str, str]:
    """What one node's snapshot holds: label -> absolute path."""
    out = {}
    if node in members_of(topo):
        out |= {"pgdata": topo.cluster.data_dir, "patroni": PATRONI_CONF_DIR, "dropins": PATRONI_DROPINS}
    if node.etcd:
        out["etcd"] = plat.etcd_data_dir
    return out


def copy_script(held: dict[str, str], name: str, *, into_snapshot: bool) -> str:
    """Copy each path into the node's snapshot folder, or back from it (owners and modes kept)."""
    folder = f"{ON_NODE}/{name}"
    lines = ["set -eu"]
    if into_snapshot:
        lines += [f"rm -rf {folder}.new", f"mkdir -p {folder}.new"]
        lines += [f"[ ! -e {p} ] || cp -a {p} {folder}.new/{label}" for label, p in held.items()]
        lines += [f"rm -rf {folder}", f"mv {folder}.new {folder}"]
    else:
        lines.append(f"[ -d {folder} ] || {{ echo 'no snapshot {name} on this node' >&2; exit 3; }}")
        for label, p in held.items():
            # moved aside and removed after the copy, in the background: a rename is instant
            lines += [f"rm -rf {p}.lab-old", f"[ ! -e {p} ] || mv {p} {p}.lab-old",
                      f"[ ! -e {folder}/{label} ] || cp -a {folder}/{label} {p}"]
        lines.append("(" + "; ".join(f"rm -rf {p}.lab-old" for p in held.values()) + ") </dev/null >/dev/null 2>&1 &")
        if "dropins" in held:
            lines.append("systemctl daemon-reload")
    return "\n".join(lines) + "\n"


def tolerant(command: str, already: str) -> str:
    """``command``, where an answer saying it is ``already`` so (paused twice) is success."""
    return (f"out=$({command} 2>&1) || {{ echo \"$out\" | grep -q {shlex.quote(already)} || "
            f"{{ echo \"$out\" >&2; exit 1; }}; }}\n")


def stop_postgres_script(data_dir: str, plat: platforms.Platform) -> str:
    """Stop this node's PostgreSQL cleanly if it runs (Patroni is paused or stopped)."""
    return (f"if sudo -u postgres {plat.pg_bin}/pg_ctl -D {data_dir} status >/dev/null 2>&1; then "
            f"sudo -u postgres {plat.pg_bin}/pg_ctl -D {data_dir} stop -m fast -w -t 60; fi\n")


def start_postgres_script(data_dir: str, plat: platforms.Platform, port: int = 5432) -> str:
    """Start PostgreSQL with the command line Patroni last gave it (postmaster.opts), detached, and
    wait until it accepts connections (a replica: in recovery)."""
    opts = f"{data_dir}/postmaster.opts"
    return "\n".join([
        "set -eu",
        f"[ -s {opts} ] || {{ echo 'no postmaster.opts in {data_dir}' >&2; exit 3; }}",
        f"cd {data_dir}",
        f"sudo -u postgres setsid bash -c {shlex.quote(f'eval exec $(cat {opts})')} </dev/null >/dev/null 2>&1 &",
        f"for _ in $(seq 120); do sudo -u postgres {plat.pg_bin}/pg_isready -q -h 127.0.0.1 -p {port} && exit 0; sleep 0.25; done",
        "echo 'PostgreSQL did not accept connections within 30 s' >&2; exit 4",
    ]) + "\n"


def force_stop_script(node: Node, topo: Topology, plat: platforms.Platform, undo: list[str]) -> str:
    """Whatever a drill left: its faults taken back (``undo``), then Patroni and PostgreSQL stopped
    hard (their files are about to be replaced) and etcd stopped."""
    lines = list(undo)
    if node in members_of(topo):
        # a Patroni killed without closing its watchdog arms the containers' fencer: stop it too
        # (starting Patroni starts it again, fresh)
        lines += ["systemctl kill -s KILL patroni 2>/dev/null; systemctl stop patroni 2>/dev/null; true",
                  f"systemctl stop {FENCER_UNIT} 2>/dev/null; true",
                  f"pkill -KILL -u postgres -f '{plat.pg_bin}/postgres' 2>/dev/null; true",
                  f"rm -f {topo.cluster.data_dir}/postmaster.pid"]
    if node.etcd:
        lines.append(f"systemctl stop {plat.etcd_service}")
    return "\n".join(lines) + "\n"


# --- running it ----------------------------------------------------------------------------

class Nodes:
    """Scripts on several nodes at once over the lab's ssh; a failure names the node and its stderr."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo

    def run(self, scripts: dict[str, str]) -> dict[str, str]:
        def one(node: str) -> tuple[str, Any]:      # one thread per node: its cached connection is its own
            return node, remote.run_as_root(remote.connect(self.topo, node), scripts[node])

        with ThreadPoolExecutor(max_workers=max(1, len(scripts))) as pool:
            results = dict(pool.map(one, [n for n, s in scripts.items() if s.strip()]))
        for node, r in results.items():
            if r.exited != 0:
                said = (r.stderr or r.stdout or "").strip().splitlines()
                raise SnapshotError(f"{node}: {said[-1] if said else f'exit {r.exited}'}")
        return {n: r.stdout for n, r in results.items()}


def _cluster(topo: Topology, node: Node) -> dict:
    status, body = remote.http(topo, node.address, topo.ports.patroni, "/cluster")
    if status != 200 or not isinstance(body, dict):
        raise SnapshotError(f"{node.name}: Patroni's REST API answered {status}; is the lab up? (`invoke status`)")
    return body


def _scopes(topo: Topology) -> dict[str, Node]:
    """scope -> a node whose Patroni speaks for it."""
    out = {topo.cluster.scope: topo.postgres_nodes[0]}
    if topo.standby_node:
        out[topo.cluster.standby_scope] = topo.standby_node
    return out


# Where a killed Patroni's watchdog is the containers' fencer, which restore stops with it. On a VM the
# kernel's watchdog would reset the machine instead: VM providers are to use their own snapshots.
PROVIDERS = ("docker",)


def check_provider() -> lab_state.State:
    st = lab_state.load()
    if st.provider not in PROVIDERS:
        raise SnapshotError(f"snapshots are made for the docker provider; this lab runs on {st.provider} "
                            "(on VMs, Vagrant's own `vagrant snapshot`; the lab does not drive it yet)")
    return st


def save(topo: Topology, name: str = DEFAULT, *, report: Report = print) -> Manifest:
    """Pause both clusters, stop them in order, copy each node's state, start them as they were."""
    check_name(name)
    started = time.monotonic()
    plat = platforms.for_lab(check_provider().platform, topo)
    nodes = Nodes(topo)
    leaders, timelines = {}, {}
    for scope, node in _scopes(topo).items():
        for m in _cluster(topo, node).get("members", []):
            timelines[m["name"]] = m.get("timeline")
            if m.get("role") in ("leader", "standby_leader"):
                leaders[scope] = m["name"]
        if scope not in leaders:
            raise SnapshotError(f"cluster {scope} has no leader now; heal the lab first (`invoke heal`)")
    ids = nodes.run({n.name: "cat /etc/machine-id\n" for n in topo.nodes})
    members = members_of(topo)
    primary = topo.node(leaders[topo.cluster.scope])
    report(f"snapshot {name}: pausing {', '.join(leaders)} (leaders {', '.join(leaders.values())}), then stopping them")
    nodes.run({node.name: tolerant(ctl.pause(scope), "already paused") for scope, node in _scopes(topo).items()})
    try:
        nodes.run({n.name: "systemctl stop patroni\n" for n in members})     # paused: PostgreSQL stays up
        nodes.run({n.name: stop_postgres_script(topo.cluster.data_dir, plat) for n in members if n is not primary})
        nodes.run({primary.name: stop_postgres_script(topo.cluster.data_dir, plat)})
        # the pause ends in the DCS itself, before etcd stops: the snapshot's Patroni starts unpaused
        nodes.run({node.name: ctl.edit_config_set(scope, pause=None) + "\n" for scope, node in _scopes(topo).items()})
        nodes.run({n.name: f"systemctl stop {plat.etcd_service}\n" for n in topo.etcd_nodes})
        report(f"snapshot {name}: copying state on {len(topo.nodes)} nodes")
        nodes.run({n.name: copy_script(paths(topo, n, plat), name, into_snapshot=True) for n in topo.nodes})
    finally:
        _start(topo, plat, nodes, primary)
    m = Manifest(name=name, lab=topo.name, topology=topology_digest(topo),
                 machines={n: i.strip() for n, i in ids.items()}, leaders=leaders,
                 timelines={k: v for k, v in timelines.items() if v is not None}, platform=plat.name,
                 created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 took_s=round(time.monotonic() - started, 1), nodes=[n.name for n in topo.nodes])
    path = manifest_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(m.to_json(), indent=2) + "\n")
    report(f"snapshot {name}: saved in {m.took_s:g} s (leaders {', '.join(leaders.values())})")
    return m


def _start(topo: Topology, plat: platforms.Platform, nodes: Nodes, primary: Node) -> None:
    """etcd, the primary, the other PostgreSQL servers, then Patroni everywhere, which finds each
    PostgreSQL running in its role and keeps it; the read-write VIP on the primary's node only."""
    members = members_of(topo)
    nodes.run({n.name: f"systemctl start {plat.etcd_service}\n" for n in topo.etcd_nodes})
    nodes.run({primary.name: start_postgres_script(topo.cluster.data_dir, plat, topo.ports.postgres)})
    nodes.run({n.name: start_postgres_script(topo.cluster.data_dir, plat, topo.ports.postgres) for n in members if n is not primary})
    # as root: the callback's own privilege comes from Patroni's unit, which does not run it here
    nodes.run({n.name: "systemctl reset-failed patroni 2>/dev/null; systemctl start patroni\n"
               + (f"{VIP_CALLBACK} on_role_change {'primary' if n is primary else 'replica'} {topo.cluster.scope}\n"
                  if n in topo.postgres_nodes else "") for n in members})
    for n in members:
        poll.wait_for(f"Patroni's REST API on {n.name}",
                      lambda n=n: remote.http(topo, n.address, topo.ports.patroni, "/patroni")[0] == 200,
                      timeout=60, every=0.2)


def restore(topo: Topology, name: str = DEFAULT, *, report: Report = print) -> Manifest:
    """Bring the lab back to snapshot ``name``; refused, touching nothing, when it is not this lab's."""
    started = time.monotonic()
    check_provider()
    m = load_manifest(name)
    if m.topology != topology_digest(topo) or m.lab != topo.name:
        raise SnapshotError(f"snapshot {name!r} was taken of another topology ({m.lab}); "
                            f"take a new one of this lab with `invoke snapshot.save --name {name}`")
    nodes = Nodes(topo)
    # who the machines are and whether each still holds its part, read before anything is stopped
    probe = f"cat /etc/machine-id; [ -d {ON_NODE}/{name} ] && echo held || echo missing\n"
    answers = {n: out.split() for n, out in nodes.run({n.name: probe for n in topo.nodes}).items()}
    ids = {n: a[0] if a else "" for n, a in answers.items()}
    if ids != m.machines:
        changed = sorted(n for n in ids if ids[n] != m.machines.get(n))
        raise SnapshotError(f"snapshot {name!r} was taken of other machines ({', '.join(changed)} rebuilt since); "
                            f"take a new one with `invoke snapshot.save --name {name}`")
    missing = sorted(n for n, a in answers.items() if a[-1:] != ["held"])
    if missing:
        raise SnapshotError(f"snapshot {name!r}: {', '.join(missing)} no longer hold their part of it; "
                            f"take a new one with `invoke snapshot.save --name {name}`")
    plat = platforms.for_lab(m.platform, topo)
    undo = fault_undo_commands(topo)
    report(f"snapshot {name}: stopping what runs, putting back the state of {m.created}")
    nodes.run({n.name: force_stop_script(n, topo, plat, undo.get(n.name, []))
               + copy_script(paths(topo, n, plat), name, into_snapshot=False) for n in topo.nodes})
    _start(topo, plat, nodes, topo.node(m.leaders[topo.cluster.scope]))
    report(f"snapshot {name}: restored in {time.monotonic() - started:.1f} s (leaders {', '.join(m.leaders.values())})")
    return m


def delete(topo: Topology, name: str) -> None:
    load_manifest(name)
    Nodes(topo).run({n.name: f"rm -rf {ON_NODE}/{check_name(name)}\n" for n in topo.nodes})
    manifest_path(name).unlink()
