"""The failover time Patroni's settings predict: a min / avg / max band per client path.

A primary fault ends in one of two ways (article §5):

- **key expiry**: the leader stops renewing its key without giving it up (Patroni killed with
  Restart=no, the leader cut from etcd, the machine frozen). Patroni renews the key once per HA loop,
  so the last renewal happened 0 to ``loop_wait`` s before the fault and the key expires
  ``ttl - loop_wait`` to ``ttl`` s after it. The replicas watch the key and race when it expires; a
  replica that misses the expiry races at its next HA loop, up to ``loop_wait`` s later (measured
  here: 10 of 10 runs raced at the expiry, one earlier run a loop later).
- **release**: the leader gives the key up itself (Patroni stopped, a switchover): its PostgreSQL
  stops first, then the key is deleted and the replicas race at once.

After the race: the winner promotes its PostgreSQL; the read-write VIP follows through the
``on_role_change`` callback (article §7.2); haproxy marks the new primary UP after ``rise``
successful checks ``inter`` s apart, the first one 0 to ``inter`` s after the promotion (§7.4).
A client's write then succeeds on its next attempt, up to one writer cadence later.

The constants below are allowances for the parts no setting controls (docs/rto.md sets them
against the phases measured on the lab's machines): they widen the band; the settings move it.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import Enum

# Seconds an HA loop itself takes: renewals come loop_wait plus this apart, so the last one can be
# that much more than loop_wait before the fault (measured here: up to 11.2 s with loop_wait 10).
CYCLE_S = 1.5
# Seconds from winning the race to a writable primary (pg_ctl promote and its checkpoint request).
PROMOTE_S = (0.3, 1.0, 3.0)
# Seconds for a released leader to stop PostgreSQL (fast shutdown, then the key is deleted).
RELEASE_S = (0.3, 1.5, 5.0)
# Seconds for the callback to add the VIP and announce it (ip addr add, arping).
CALLBACK_S = (0.0, 0.3, 1.5)


class Ending(str, Enum):
    KEY_EXPIRY = "key-expiry"
    RELEASE = "release"


@dataclass(frozen=True)
class Settings:
    """What the band is computed from, read live: Patroni's dynamic configuration and haproxy.cfg."""
    ttl: float
    loop_wait: float
    retry_timeout: float
    haproxy_inter: float = 3.0
    haproxy_rise: int = 2
    writer_cadence: float = 0.2


@dataclass(frozen=True)
class Band:
    low: float
    mid: float
    high: float
    formula: str

    def holds(self, measured: float) -> bool:
        return self.low <= measured <= self.high

    def to_json(self) -> dict:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _add(*parts: tuple[float, float, float]) -> tuple[float, float, float]:
    return tuple(round(sum(p[i] for p in parts), 3) for i in range(3))  # type: ignore[return-value]


def race(ending: Ending, s: Settings) -> tuple[tuple[float, float, float], str]:
    """Seconds from the fault to the replicas' leader race, and how."""
    if ending is Ending.KEY_EXPIRY:
        return ((s.ttl - s.loop_wait - CYCLE_S, s.ttl, s.ttl + s.loop_wait),
                "ttl - loop_wait - an HA cycle .. ttl + loop_wait (key expiry, or the next loop)")
    return RELEASE_S, "leader's shutdown (key released)"


def predict(ending: Ending, s: Settings) -> dict[str, Band]:
    """The band per client path: ``vip`` (the read-write VIP, §7.2) and ``haproxy`` (:5000, §7.4)."""
    to_race, how = race(ending, s)
    promoted = _add(to_race, PROMOTE_S)
    cadence = (0.0, s.writer_cadence / 2, s.writer_cadence)
    vip = _add(promoted, CALLBACK_S, cadence)
    checks = ((s.haproxy_rise - 1) * s.haproxy_inter, (s.haproxy_rise - 0.5) * s.haproxy_inter,
              s.haproxy_rise * s.haproxy_inter)
    haproxy = _add(promoted, checks, cadence)
    return {
        "vip": Band(*vip, formula=f"{how} + promotion + callback + writer cadence"),
        "haproxy": Band(*haproxy, formula=f"{how} + promotion + (rise-1 .. rise) x inter + writer cadence"),
    }


def outside(measured: dict[str, float | None], bands: dict[str, Band]) -> list[str]:
    """One note per path whose measured RTO lies outside its band; a path not measured is said so,
    never counted as inside."""
    notes = []
    for path, band in bands.items():
        value = measured.get(path)
        if value is None:
            notes.append(f"RTO {path}: not measured, so not compared with the band {band.low:g}-{band.high:g} s")
        elif not band.holds(value):
            side = "above" if value > band.high else "below"
            notes.append(f"RTO {path} {value:g} s is {side} the band the settings predict "
                         f"({band.low:g}-{band.high:g} s: {band.formula})")
    return notes


def haproxy_checks(cfg: str, proxy: str) -> tuple[float, int] | None:
    """(inter seconds, rise) of ``proxy``'s servers in an haproxy.cfg (its ``default-server`` or first
    ``server`` line), or None when the proxy or the settings are not there."""
    block = re.search(rf"(?ms)^(?:listen|backend)\s+{re.escape(proxy)}\s*$(.*?)(?=^\S|\Z)", cfg)
    if not block:
        return None
    line = next((l for l in block.group(1).splitlines() if re.match(r"\s*(default-server|server)\s", l)
                 and " inter " in f" {l} "), None)
    if line is None:
        return None
    inter = re.search(r"\binter\s+(\d+(?:\.\d+)?)(ms|s)?\b", line)
    rise = re.search(r"\brise\s+(\d+)\b", line)
    if not inter:
        return None
    seconds = float(inter.group(1)) / (1000 if inter.group(2) == "ms" else 1)
    return seconds, int(rise.group(1)) if rise else 2


# How finely the phases are seen: the watch samples twice a second, its etcd, Patroni and haproxy
# views once a second, so a gap between two phases is known to about this much.
SEEN_TO_S = 1.0


@dataclass(frozen=True)
class Gap:
    """The time between two phases of a failover and the range the settings give it."""
    after: str
    phase: str
    low: float
    high: float
    why: str


def gaps(s: Settings) -> list[Gap]:
    """The parts of a failover each of which one setting decides (after the leader race)."""
    return [
        Gap("key_expired", "new_leader", 0.0, s.loop_wait + CYCLE_S + SEEN_TO_S,
            f"a replica races at the expiry or at its next loop (loop_wait {s.loop_wait:g} s)"),
        Gap("new_leader", "new_timeline", -SEEN_TO_S, PROMOTE_S[2] + SEEN_TO_S, "promotion"),
        Gap("new_timeline", "rw_vip_moved", -SEEN_TO_S, CALLBACK_S[2] + SEEN_TO_S, "the on_role_change callback (§7.2)"),
        Gap("new_timeline", "haproxy_up", max(0.0, (s.haproxy_rise - 1) * s.haproxy_inter - SEEN_TO_S),
            s.haproxy_rise * s.haproxy_inter + SEEN_TO_S,
            f"haproxy's checks (inter {s.haproxy_inter:g} s, rise {s.haproxy_rise})"),
    ]


def gaps_outside(phases: dict[str, float | None], s: Settings) -> list[str]:
    """One note per part of the failover that took longer or shorter than its setting predicts; a
    part whose phases were not both seen is not judged (it is said unknown elsewhere)."""
    notes = []
    for g in gaps(s):
        a, b = phases.get(g.after), phases.get(g.phase)
        if a is None or b is None:
            continue
        took = round(b - a, 1)
        if not g.low <= took <= g.high:
            notes.append(f"{g.phase} came {took:g} s after {g.after}; {g.why} predict "
                         f"{g.low:g}-{g.high:g} s")
    return notes
