"""Patroni's dynamic configuration for the fake labs: what the first member's files say was
provisioned (``bootstrap.dcs``) and the DCS that matches it, so the health gate's configuration
check reads a lab at its baseline."""
from __future__ import annotations

import copy

import yaml

from lab.exercises.run import dynamic_config
from lab.exercises.kit.patroni_config import PATRONI_CONFIG
from lab.exercises.kit.shell import Output

LOCAL = {"bootstrap": {"dcs": {"ttl": 30, "loop_wait": 10, "retry_timeout": 10,
                               "postgresql": {"use_slots": True, "parameters": {"wal_level": "replica"}}}}}


def provisioned(topo) -> dict:
    """GET /config of a lab just provisioned."""
    return copy.deepcopy(dynamic_config.baseline(topo, LOCAL))


def config_files(command: str) -> Output | None:
    """The answer to the gate's read of the local configuration files; None for any other command."""
    if PATRONI_CONFIG in command and "cat" in command and "sh -c" in command:
        return Output(0, "---\n" + yaml.safe_dump(LOCAL))
    return None
