"""The shared steps: one name per condition, and the timing the drills' bounds derive from."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from lab.exercises.api import steps as S
from lab.exercises.api.timing import Timing


class Probe:
    def __init__(self, leader: str | None, in_recovery: dict[str, bool | None]) -> None:
        self._leader, self._in_recovery = leader, in_recovery

    def leader(self) -> str | None:
        return self._leader

    def in_recovery(self, member: str) -> bool | None:
        return self._in_recovery.get(member)


def lab_with(leader: str | None, **in_recovery: bool | None) -> SimpleNamespace:
    return SimpleNamespace(probe=Probe(leader, in_recovery))


def test_writable_leader_names_the_leader_that_fits():
    lab = lab_with("pg2", pg1=True, pg2=False)
    assert S.writable_leader(lab)() == "pg2"                       # any writable leader
    assert S.writable_leader(lab, "pg2")() == "pg2"                # that member
    assert S.writable_leader(lab, "pg1")() is None                 # another member leads
    assert S.writable_leader(lab, other_than="pg1")() == "pg2"     # a new leader after pg1
    assert S.writable_leader(lab, other_than="pg2")() is None      # still the old one


def test_a_leader_still_in_recovery_or_no_leader_is_not_writable():
    assert S.writable_leader(lab_with("pg2", pg2=True))() is None
    assert S.writable_leader(lab_with("pg2", pg2=None), "pg2")() is None   # PostgreSQL does not answer
    assert S.writable_leader(lab_with(None))() is None
    assert S.writable_leader(lab_with(""), other_than="pg1")() is None


def test_each_kind_is_its_own_module_and_the_package_names_them_all():
    from lab.exercises.api.steps import conditions, config, expectations, journal, network, operations, sql
    kinds = {m.__name__ for m in (conditions, config, expectations, journal, network, operations, sql)}
    functions = [n for n in S.__all__ if callable(getattr(S, n)) and n != "Condition"]
    assert len(functions) >= 38
    for name in functions:
        assert getattr(S, name).__module__ in kinds, name


@pytest.mark.parametrize("gone", ["new_leader_other_than", "a_writable_leader", "leader_stays", "rw_vip_on_leader",
                                  "fenced_during_drill", "fenced_nodes"])
def test_merged_and_dead_steps_are_gone(gone):
    assert not hasattr(S, gone)


def test_timing_reads_the_dynamic_configuration():
    t = Timing.of({"ttl": 20, "loop_wait": "5", "retry_timeout": 7, "maximum_lag_on_failover": 1})
    assert (t.ttl, t.loop_wait, t.retry_timeout) == (20, 5, 7)


def test_timing_falls_back_to_patronis_defaults_for_a_missing_or_empty_key():
    assert Timing.of({}) == Timing(ttl=30, loop_wait=10, retry_timeout=10)
    assert Timing.of({"ttl": None, "loop_wait": 3}) == Timing(30, 3, 10)


def test_timing_is_frozen():
    with pytest.raises(AttributeError):
        Timing().ttl = 5          # type: ignore[misc]
