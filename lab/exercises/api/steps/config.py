"""Patroni's configuration, changed by a drill and always put back in restore: the dynamic
configuration (``patronictl edit-config``), one node's local file, and the restarts a change needs."""
from __future__ import annotations

import time
from typing import Any

import yaml

from lab.exercises.api.context import Lab
from lab.exercises.api.steps.conditions import members, scope
from lab.exercises.kit import ctl, patroni_config
from lab.exercises.kit.patroni_config import PATRONI_CONFIG, PATRONI_UNIT

def restart_pending(lab: Lab) -> bool:
    """True when no member is pending restart; otherwise restart once and return False (call again).
    The primary first: lowering a parameter such as max_connections, a replica keeps at least the
    primary's running value (PostgreSQL refuses less) until it has replayed the primary's change, so
    a replica restarted too early stays pending."""
    pending = [m for m in members(lab) if lab.probe.member_state(m).get("pending_restart")]
    if not pending:
        return True
    lead = lab.probe.leader() or pending[0]
    cmd = ctl.restart(scope(lab), lead) if lead in pending else ctl.restart(scope(lab), pending=True)
    lab.shell.run(lab.node_of(lead), cmd, timeout=300)
    return False


def set_config(lab: Lab, **changes: Any) -> None:
    """Change Patroni's dynamic configuration (``patronictl edit-config -s``), remembered for restore."""
    current = lab.probe.dynamic_config()
    previous = {k: current.get(k) for k in changes}
    lab.say("\n" + lab.tr("config", changes=", ".join(f"{k}={v}" for k, v in changes.items())))
    lab.command(lab.node_of(lab.topo.postgres_nodes[0].member), patroni_config.edit_config_command(changes))
    lab.probe.patch_config(changes)
    lab.on_restore(f"config {previous}", lambda: lab.probe.patch_config(previous))


def set_local(lab: Lab, member: str, updates: dict[str, Any], why: str = "", *,
              fragment: str = patroni_config.DRILL_FRAGMENT, tag: str = patroni_config.MARKER_TAG) -> None:
    """Change one node's local Patroni configuration (dotted keys) and reload Patroni; undone in
    restore. With a configuration directory the change is one extra ``fragment``, merged in name
    order (the drill's last but a negative control's); with the article's single file, the file is
    edited and its original text put back. A marker ``tag`` proves the reload happened (GET /patroni
    shows tags)."""
    node = lab.node_of(member)
    marker = f"{int(time.time() * 1000)}"
    shown = ", ".join(f"{k}: {v}" for k, v in updates.items())
    lab.say("\n" + lab.tr("local_config", node=node, changes=shown))
    if lab.facts.config_is_directory(node):
        path = f"{PATRONI_CONFIG}/{fragment}"
        lab.command(node, f"sudoedit {path}   # {shown}", why)
        lab.command(node, f"sudo systemctl reload {PATRONI_UNIT}")
        _write_file(lab, node, path, patroni_config.dump(patroni_config.with_updates({}, updates, marker, tag)))
        _reloaded(lab, member, marker, tag)
        lab.on_restore(f"{path} on {node}", lambda: _remove_fragment(lab, member, path, tag))
        return
    path = f"{PATRONI_CONFIG}.yml"
    original = lab.run_on(node, f"sudo cat {path}").stdout
    data = patroni_config.with_updates(yaml.safe_load(original) or {}, updates, marker, tag)
    lab.command(node, f"sudoedit {path}   # set {shown}", why)
    lab.command(node, f"sudo systemctl reload {PATRONI_UNIT}")
    _write_file(lab, node, path, patroni_config.dump(data))
    _reloaded(lab, member, marker, tag)

    def put_back() -> None:
        _write_file(lab, node, path, original)
        _reloaded(lab, member, None, tag)
    lab.on_restore(f"{path} on {node}", put_back)


def _write_file(lab: Lab, node: str, path: str, text: str) -> None:
    lab.run_on(node, patroni_config.write_file_command(path, text))
    lab.facts.forget(node)


def _remove_fragment(lab: Lab, member: str, path: str, tag: str = patroni_config.MARKER_TAG) -> None:
    node = lab.node_of(member)
    lab.command(node, f"sudo rm {path} && sudo systemctl reload {PATRONI_UNIT}")
    lab.run_on(node, f"sudo rm -f {path}")
    lab.facts.forget(node)
    _reloaded(lab, member, None, tag)


def _reloaded(lab: Lab, member: str, marker: str | None, tag: str = patroni_config.MARKER_TAG) -> None:
    node = lab.node_of(member)
    if lab.facts.unit_state(node, PATRONI_UNIT) != "active":
        return   # a stopped Patroni reads the file when it starts
    # A SIGHUP that reaches a Patroni still starting up (e.g. just started by an undo) kills it:
    # reload only once its REST API answers, which comes after its signal handlers.
    lab.expect(lambda: lab.probe.rest_alive(member), f"Patroni on {member} is up", within=60)
    lab.run_on(node, f"sudo systemctl reload {PATRONI_UNIT}")
    lab.expect(lambda: (lab.probe.member_state(member).get("tags") or {}).get(tag) == marker,
               f"Patroni on {member} has reloaded its configuration", within=30)
