"""Patroni's configuration as data: where it lives on a node, and the edits a drill makes to it.

The lab's Patroni reads a directory of fragments merged in name order (/etc/patroni/*.yml); the
article's single /etc/patroni.yml is read too when that is what a node has. A drill's local change
is one extra fragment merged last (or, with the single file, the file edited and put back).
These functions only compute text; running it on a node is the steps' business.
"""
from __future__ import annotations

from typing import Any

import yaml

from provision.context import PATRONI_CONF_DIR as PATRONI_CONFIG

PATRONI_UNIT = "patroni"
ETCD_UNIT = "etcd"
DRILL_FRAGMENT = "90-lab-drill.yml"
MARKER_TAG = "lab_drill"            # tags.lab_drill: GET /patroni shows it, proving a reload happened
# A negative control's break (lab.exercises.run.controls) lives in its own fragment, merged after the drill's,
# with its own marker: the drill's edits and reload checks never touch it, and its removal leaves the drill's.
CONTROL_FRAGMENT = "95-lab-control.yml"
CONTROL_TAG = "lab_control"


def deep_merge(into: dict, other: dict) -> dict:
    """Merge ``other`` into ``into`` the way Patroni merges its configuration fragments."""
    for k, v in other.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            deep_merge(into[k], v)
        else:
            into[k] = v
    return into


def set_path(data: dict, dotted: str, value: Any) -> None:
    """``set_path(d, "watchdog.mode", "off")`` sets d["watchdog"]["mode"], creating levels as needed."""
    keys = dotted.split(".")
    for k in keys[:-1]:
        data = data.setdefault(k, {}) if isinstance(data.get(k), dict) or k not in data else data[k]
    data[keys[-1]] = value


def yaml_scalar(v: Any) -> str:
    """A value as ``patronictl edit-config -s key=VALUE`` reads it (None -> null: the key is removed)."""
    return "null" if v is None else yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("\n...")


def edit_config_command(changes: dict[str, Any]) -> str:
    """The ``patronictl edit-config -s`` line a trainee types for a dynamic configuration change."""
    sets = " ".join(f"-s '{k}={yaml_scalar(v)}'" for k, v in changes.items())
    return f"patronictl -c {PATRONI_CONFIG} edit-config {sets} --force"


def with_updates(data: dict, updates: dict[str, Any], marker: str, tag: str = MARKER_TAG) -> dict:
    """``data`` with dotted ``updates`` applied and the reload marker ``tag`` set."""
    for dotted, value in updates.items():
        set_path(data, dotted, value)
    set_path(data, f"tags.{tag}", marker)
    return data


def dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def write_file_command(path: str, text: str) -> str:
    """Shell text that writes ``text`` to ``path`` as Patroni's owner, readable by it only."""
    eof = "LAB_DRILL_EOF"
    return (f"sudo tee {path} >/dev/null <<'{eof}'\n{text.rstrip()}\n{eof}\n"
            f"sudo chown postgres:postgres {path} && sudo chmod 600 {path}")
