"""Which Patroni and which PostgreSQL a lab runs, and what each Patroni release changes.

The topology chooses them (``options.patroni_version``, ``options.postgres_version``); the default
is what the lab has always run, Patroni 4.1.5 on PostgreSQL 15 (Debian 12). Debian's releases
carry one PostgreSQL each, so a PostgreSQL major is also the nodes' Debian release and Python.

Where Patroni changed a name the article uses, :class:`PatroniRelease` says which one this
release takes; the platform table (provision/platforms.py) and the drills read it from there.
A pair the lab cannot run is refused at load with the reason (:func:`refusal`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PATRONI = "4.1.5"
DEFAULT_POSTGRES = 15

VERSION = re.compile(r"\d+\.\d+\.\d+")


@dataclass(frozen=True)
class PostgresRelease:
    """A PostgreSQL major as one Debian release ships it."""
    major: int
    suite: str           # Debian's code name: the docker nodes' image is built from it
    platform: str        # provision/platforms.py's name for those nodes
    python: str          # the nodes' Python: compiled wheels in the wheelhouse must match it


POSTGRES: dict[int, PostgresRelease] = {r.major: r for r in (
    PostgresRelease(13, "bullseye", "debian11", "3.9"),
    PostgresRelease(15, "bookworm", "debian12", "3.11"),
    PostgresRelease(17, "trixie", "debian13", "3.13"),
)}


def parse(version: str) -> tuple[int, ...]:
    """``"3.3.8"`` -> ``(3, 3, 8)``."""
    return tuple(int(p) for p in version.split("."))


@dataclass(frozen=True)
class PatroniRelease:
    """What one Patroni release calls the things the article names (read from each release's source)."""
    version: str

    def at_least(self, *release: int) -> bool:
        return parse(self.version) >= release

    @property
    def primary_role(self) -> str:
        """The role passed to callbacks and shown by the REST API: 'master' until 4.0."""
        return "primary" if self.at_least(4, 0) else "master"

    @property
    def start_timeout_key(self) -> str:
        """primary_start_timeout from 3.0 (the article's master_start_timeout before)."""
        return "primary_start_timeout" if self.at_least(3, 0) else "master_start_timeout"

    @property
    def dcs(self) -> str:
        """The etcd section and pip extra: ``etcd3`` (etcd's v3 API) from 2.0; 1.x speaks only v2 (``etcd``)."""
        return "etcd3" if self.at_least(2, 0) else "etcd"

    @property
    def switchover_leader_flag(self) -> str:
        """How ``patronictl switchover`` names the current leader: ``--leader`` from 3.0, ``--master`` before."""
        return "--leader" if self.at_least(3, 0) else "--master"

    @property
    def failsafe_mode(self) -> bool:
        """failsafe_mode (the primary keeps running while the DCS is down) exists from 3.0."""
        return self.at_least(3, 0)


# The oldest Patroni whose source knows each PostgreSQL (its parameter tables name the major:
# 130000 from 2.0, 150000 from 2.1.4, 170000 throughout from 3.3.4).
OLDEST_PATRONI_FOR = {13: (2, 0, 0), 15: (2, 1, 4), 17: (3, 3, 4)}
# Tried here and found not to run; the reason is what was seen.
NOT_RUNNING: dict[tuple[str, int], str] = {}


def refusal(patroni: str, postgres: int) -> str | None:
    """Why the lab cannot run this pair, or None when it can (a one-line reason)."""
    if not VERSION.fullmatch(patroni):
        return f"options.patroni_version {patroni!r}: a release number such as {DEFAULT_PATRONI}"
    if postgres not in POSTGRES:
        return (f"options.postgres_version {postgres!r}: one of {', '.join(map(str, POSTGRES))} "
                "(the PostgreSQL of a Debian release the lab can build nodes from)")
    if (patroni, postgres) in NOT_RUNNING:
        return f"Patroni {patroni} on PostgreSQL {postgres}: {NOT_RUNNING[patroni, postgres]}"
    oldest = OLDEST_PATRONI_FOR[postgres]
    if parse(patroni) < oldest:
        return (f"Patroni {patroni} predates PostgreSQL {postgres} (its first supporting release is "
                f"{'.'.join(map(str, oldest))}): choose a newer options.patroni_version or an older "
                "options.postgres_version")
    return None
