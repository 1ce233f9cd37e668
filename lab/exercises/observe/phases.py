"""A failover's phases, read from a drill's evidence (its events.jsonl), each in seconds from the fault.

Every phase says where it was seen. A phase the evidence does not show is *unknown* (``t`` None,
with the reason), never 0: a missing etcd view does not mean the key expired at the fault.

    fault              the drill's fault mark
    key_renewed        the old leader's last renewal of its key (the last etcd view of it: the
                       lease's time left dates the renewal, ttl - left before the view)
    key_expired        the first etcd view after the fault without the old leader's key
    new_leader         the first Patroni view after the fault naming another leader
    new_timeline       the first watch sample after the fault with another member primary on a
                       higher timeline
    rw_vip_moved       the first watch sample after the fault with the read-write VIP on the new
                       leader's node (the old one may still hold it: two holders are the split brain's)
    haproxy_up         the first haproxy view after the fault with the new leader's server UP in
                       the primary backend
    first_write_<path> the first write acknowledged after the fault on the new timeline, per path
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

ORDER = ("fault", "key_renewed", "key_expired", "new_leader", "new_timeline", "rw_vip_moved", "haproxy_up")


@dataclass(frozen=True)
class Phase:
    name: str
    t: float | None          # seconds from the fault; None: unknown
    seen: str                # the evidence, or why it is unknown

    @property
    def known(self) -> bool:
        return self.t is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _of(events: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [e for e in events if e.get("type") == kind]   # a failed view is a ``view_error`` event, never one of these


def _primary_before(samples: list[Mapping[str, Any]], t0: float) -> tuple[str | None, int | None]:
    """The member primary in the last watch sample before the fault, and its timeline."""
    for s in reversed([s for s in samples if s["t"] <= t0]):
        primaries = [(m, v) for m, v in (s.get("members") or {}).items() if v.get("outcome") == "primary"]
        if len(primaries) == 1:
            return primaries[0][0], primaries[0][1].get("timeline")
    return None, None


def derive(events: list[Mapping[str, Any]], *, ttl: float, node_of: Mapping[str, str],
           old_leader: str | None = None) -> list[Phase]:
    """The phases of one drill's events (dicts as in events.jsonl). ``node_of``: member -> node."""
    fault = next((e for e in _of(events, "mark") if e.get("name") == "fault"), None)
    if fault is None:
        return [Phase(n, None, "the run has no fault mark") for n in ORDER]
    t0 = fault["t"]
    samples = _of(events, "sample")
    before_leader, before_tl = _primary_before(samples, t0)
    old = old_leader or before_leader
    out = [Phase("fault", 0.0, f"mark: {fault.get('label') or 'fault'}")]
    out += _key_phases(_of(events, "dcs"), t0, ttl, old)

    new_leader = next((p for p in _of(events, "patroni") if p["t"] > t0 and p.get("leader") not in (None, old)), None)
    out.append(Phase("new_leader", round(new_leader["t"] - t0, 3), f"Patroni's view: leader {new_leader['leader']}")
               if new_leader else Phase("new_leader", None, "no Patroni view after the fault names another leader"))
    leader = new_leader["leader"] if new_leader else None

    tl_sample, new_tl = None, None
    for s in (s for s in samples if s["t"] > t0):
        for m, v in (s.get("members") or {}).items():
            tl = v.get("timeline")
            if (m != old and v.get("outcome") == "primary" and tl is not None
                    and (before_tl is None or tl > before_tl)):
                tl_sample, new_tl, leader = s, tl, leader or m
                break
        if tl_sample:
            break
    out.append(Phase("new_timeline", round(tl_sample["t"] - t0, 3), f"watch: {leader} primary on timeline {new_tl}")
               if tl_sample else Phase("new_timeline", None, "no watch sample after the fault shows another primary "
                                       "on a higher timeline"))

    node = node_of.get(leader) if leader else None
    # taken by the new leader's node (the old one may still hold it too: that is the split brain's business)
    vip = next((s for s in samples if s["t"] > t0 and node and node in ((s.get("vips") or {}).get("read_write") or [])),
               None)
    out.append(Phase("rw_vip_moved", round(vip["t"] - t0, 3), f"watch: read-write VIP on {node}")
               if vip else Phase("rw_vip_moved", None, "no new leader known" if not node else
                                 f"no watch sample after the fault shows the read-write VIP on {node}"))

    up = next((h for h in _of(events, "haproxy") if h["t"] > t0 and leader
               and (h.get("primary") or {}).get(leader) == "UP"), None)
    out.append(Phase("haproxy_up", round(up["t"] - t0, 3), f"haproxy's statistics: {leader} UP")
               if up else Phase("haproxy_up", None, "no haproxy view after the fault shows the new leader UP"
                                if leader else "no new leader known"))

    writes = [w for w in _of(events, "write") if w["t"] > t0]
    for path in sorted({w.get("path") for w in writes if w.get("path")}):
        first = next((w for w in writes if w.get("path") == path and w.get("ok") and new_tl is not None
                      and w.get("timeline") == new_tl), None)
        out.append(Phase(f"first_write_{path}", round(first["t"] - t0, 3), f"write {first.get('id')} on timeline {new_tl}")
                   if first else Phase(f"first_write_{path}", None, "no write acknowledged on the new timeline"
                                       if new_tl is not None else "the new timeline is not known"))
    return out


def _key_phases(views: list[Mapping[str, Any]], t0: float, ttl: float, old: str | None) -> list[Phase]:
    if not views:
        return [Phase("key_renewed", None, "no etcd view of the leader key in the evidence"),
                Phase("key_expired", None, "no etcd view of the leader key in the evidence")]
    gone = next((v for v in views if v["t"] > t0 and v.get("leader") != old), None)
    # the last view of the old key before it went: its time left dates the last renewal
    held = [v for v in views if (gone is None or v["t"] < gone["t"]) and v.get("leader") == old
            and v.get("ttl_left") is not None]
    renewed = (Phase("key_renewed", round(held[-1]["t"] - (ttl - held[-1]["ttl_left"]) - t0, 3),
                     f"etcd: {old}'s key had {held[-1]['ttl_left']:g} s left at {held[-1]['t'] - t0:+.1f} s")
               if held else Phase("key_renewed", None, f"no etcd view shows {old}'s key"))
    expired = (Phase("key_expired", round(gone["t"] - t0, 3), f"etcd: leader key {gone.get('leader') or 'absent'}")
               if gone else Phase("key_expired", None, f"every etcd view after the fault still shows {old}'s key"))
    return [renewed, expired]
