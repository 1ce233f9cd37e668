"""`invoke snapshot.save|restore|list|delete`: a provisioned lab saved once, brought back without a rebuild.

A trainer saves the clean lab after `invoke up` (`invoke snapshot.save`), and after a drill or an
exam went wrong brings it back (`invoke snapshot.restore`, or `invoke workshop reset SEAT` for a
seat) instead of rebuilding it. Restore ends with the drills' health gate and a write through the
read-write VIP, and says how long the lab took to be gated and writable again (lab/snapshot.py).
"""
from __future__ import annotations

import time

from invoke import Exit, task

from lab import snapshot

GATE_WITHIN = 120.0


def _lab():
    from lab.cli.health import provisioned_topology
    return provisioned_topology("take or restore a snapshot")


def _gated_and_writable(topo) -> tuple[bool, list[str]]:
    """The drills' gate, then one commit through the read-write VIP."""
    from lab.cli.health import LabRecovery, off_baseline

    rec = LabRecovery(topo)
    _, found = rec.wait_healthy(GATE_WITHIN)
    bad = off_baseline(found)
    if bad:
        return False, bad
    ok, why = rec.lab.probe.can_commit(address=topo.vips.read_write)
    return ok, [] if ok else [f"a write through the read-write VIP failed: {why}"]


@task(help={"name": f"the snapshot's name (default {snapshot.DEFAULT})"})
def save(c, name=snapshot.DEFAULT):
    """Save the provisioned lab: both clusters paused, stopped in order, copied on each node, started again."""
    topo = _lab()
    ok, bad = _gated_and_writable(topo)
    if not ok:
        raise Exit("snapshot: the lab is off its healthy baseline, so it is not saved: " + "; ".join(bad)
                   + " (`invoke heal` first)", code=1)
    snapshot.save(topo, name)


@task(help={"name": f"the snapshot to bring back (default {snapshot.DEFAULT})"})
def restore(c, name=snapshot.DEFAULT):
    """Bring the lab back to a snapshot: same leader, timelines, slots, VIPs and etcd state; then the gate."""
    topo = _lab()
    started = time.monotonic()
    snapshot.restore(topo, name)
    ok, bad = _gated_and_writable(topo)
    took = time.monotonic() - started
    if not ok:
        raise Exit(f"snapshot {name}: restored, but the lab is off its baseline after {took:.1f} s: "
                   + "; ".join(bad) + " (`invoke heal`, or `invoke rebuild`)", code=1)
    print(f"snapshot {name}: gated and writable {took:.1f} s after the restore began")


@task(name="list")
def list_(c):
    """The snapshots of this lab: name, when, leaders, how long the save took."""
    found = snapshot.manifests()
    if not found:
        print("no snapshots yet: `invoke snapshot.save` takes one of the provisioned lab")
    for m in found:
        print(f"{m.name:16} {m.created}  leaders {', '.join(f'{k}={v}' for k, v in m.leaders.items())}  "
              f"(saved in {m.took_s:g} s)")


@task(help={"name": "the snapshot to remove, on the nodes and here"})
def delete(c, name):
    """Remove a snapshot."""
    topo = _lab()
    snapshot.delete(topo, name)
    print(f"snapshot {name}: removed")


# the collection `invoke snapshot.save` ... of tasks.py (a refusal is one line, by conventions.wrap)
TASKS = [save, restore, list_, delete]
