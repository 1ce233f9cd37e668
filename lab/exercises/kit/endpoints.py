"""Patroni's health endpoints and the status each role should get (article §6.2, §7.3).

The table is Patroni 4's behaviour (``patroni/api.py``): 200 means "yes, this
member is that", 503 "no". Drills compare it with what every member answers.
"""
from __future__ import annotations

ENDPOINTS = ("primary", "replica", "read-only", "sync", "async", "health", "liveness", "readiness", "leader")
# Article §7.3: "GET / or GET /leader" answer 200 only on the running leader (and /primary, its Patroni 4 name);
# "" is GET / itself.
LEADER_ONLY = ("", "leader", "primary")
STANDBY_ENDPOINTS = ("leader", "standby-leader", "primary", "replica", "read-only", "health")

# role -> endpoint -> expected status, for a running, caught-up member.
_EXPECTED: dict[str, dict[str, int]] = {
    "primary": {"primary": 200, "replica": 503, "read-only": 200, "sync": 503, "async": 503,
                "health": 200, "liveness": 200, "readiness": 200, "leader": 200, "standby-leader": 503},
    "replica": {"primary": 503, "replica": 200, "read-only": 200, "sync": 503, "async": 200,
                "health": 200, "liveness": 200, "readiness": 200, "leader": 503, "standby-leader": 503},
    "sync_standby": {"primary": 503, "replica": 200, "read-only": 200, "sync": 200, "async": 503,
                     "health": 200, "liveness": 200, "readiness": 200, "leader": 503,
                     "standby-leader": 503},
    # the leader of a standby cluster (article §8.2): a leader, but not writable
    "standby_leader": {"primary": 503, "replica": 503, "read-only": 200, "leader": 200,
                       "standby-leader": 200, "health": 200, "liveness": 200, "readiness": 200},
}


def role_of(member: dict) -> str:
    """Normalise a member's role from GET /cluster (leader/primary/master -> primary)."""
    role = str(member.get("role", ""))
    if role in ("leader", "primary", "master"):
        return "primary"
    if role in ("standby_leader", "standby-leader"):
        return "standby_leader"
    if role in ("sync_standby", "quorum_standby"):
        return "sync_standby"
    return "replica"


def expected(role: str, endpoint: str) -> int:
    """The status a running member of ``role`` should answer on ``/endpoint``."""
    try:
        return _EXPECTED[role][endpoint]
    except KeyError:
        raise ValueError(f"no expectation for role {role!r} on /{endpoint}") from None


def mismatches(role: str, answers: dict[str, int]) -> list[str]:
    """One line per endpoint whose answer differs from :func:`expected` (empty = all as expected)."""
    return [f"/{ep}: {got} (expected {expected(role, ep)})"
            for ep, got in answers.items() if got != expected(role, ep)]


def leader_only_mismatches(answers: dict[str, dict[str, int]], leader: str) -> list[str]:
    """``answers``: member -> endpoint of :data:`LEADER_ONLY` -> status. One line per answer that breaks
    "200 on the leader, 503 on every other member" (empty = the claim holds)."""
    return [f"{m} /{ep}: {got} (expected {200 if m == leader else 503})"
            for m, eps in answers.items() for ep, got in eps.items() if got != (200 if m == leader else 503)]


def table(rows: dict[str, tuple[str, dict[str, int]]], endpoints: tuple[str, ...] = ENDPOINTS) -> str:
    """A text table: member (role) x endpoint -> status, as a trainee would tabulate curl's answers."""
    head = f"{'member':<22}" + "".join(f"{ep:>15}" for ep in endpoints)
    lines = [head]
    for member, (role, answers) in rows.items():
        lines.append(f"{member + ' (' + role + ')':<22}"
                     + "".join(f"{answers.get(ep, '-'):>15}" for ep in endpoints))
    return "\n".join(lines)
