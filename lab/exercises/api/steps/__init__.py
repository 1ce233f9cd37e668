"""Named steps and conditions the drills share, each written once (as Patroni's own features/steps
name "the old leader rejoined" once and use it everywhere). Drills write ``from lab.exercises.api
import steps as S`` and ``S.rejoined(...)``; the modules hold them by kind:

- ``conditions``: who is who, and zero-argument callables for ``lab.expect`` / ``lab.hold``;
- ``expectations``: bounded waits several drills share (a new primary within a bound, a rejoin, ...);
- ``operations``: what a person does to the cluster (switchover, etcd down, synchronous mode, ...);
- ``config``: Patroni's dynamic and local configuration, always put back in restore;
- ``sql``: psql and writes through an address;
- ``journal``: the nodes' clocks and Patroni's journal;
- ``network``: the nodes' interfaces and MAC addresses.

A condition is a function of the lab returning a zero-argument callable; a step does something
(and may expect something) and returns what it measured. The kit below does the talking to the nodes.
"""
from lab.exercises.api.steps.conditions import (Condition, commit_waits_for_sync, member_key, members, outcomes_are,
                                                pick_candidate, read_only_or_explained, replicas_stream,
                                                rw_vip_only_on, scope, streams, streams_from, sync_key, sync_standby,
                                                writable_leader)
from lab.exercises.api.steps.config import restart_pending, set_config, set_local
from lab.exercises.api.steps.expectations import (FENCED_INSTEAD_OF_DEMOTED, expect_everyone_read_only,
                                                  haproxy_reaches, leader_unchanged, new_primary_within, rejoined,
                                                  undo_then_rejoined)
from lab.exercises.api.steps.journal import journal_mentions, node_epoch
from lab.exercises.api.steps.network import iface_of, mac_of
from lab.exercises.api.steps.operations import (enable_sync, history_length, member_runs, on_control_host,
                                                revive_patroni, roll_patroni, start_all_etcd, stop_all_etcd, switchover,
                                                watchdog_off_for)
from lab.exercises.api.steps.sql import psql, vip_commit, writable_through

__all__ = [
    "Condition", "FENCED_INSTEAD_OF_DEMOTED", "commit_waits_for_sync", "enable_sync", "expect_everyone_read_only",
    "haproxy_reaches", "history_length", "iface_of", "journal_mentions", "leader_unchanged", "mac_of", "member_key",
    "members", "new_primary_within", "node_epoch", "on_control_host", "outcomes_are", "pick_candidate", "psql",
    "read_only_or_explained", "rejoined", "replicas_stream", "restart_pending", "revive_patroni", "rw_vip_only_on",
    "scope", "set_config", "set_local", "start_all_etcd", "stop_all_etcd", "streams", "streams_from", "switchover",
    "sync_key", "sync_standby", "undo_then_rejoined", "vip_commit", "watchdog_off_for", "writable_leader",
    "writable_through",
]
