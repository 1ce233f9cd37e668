"""What a drill needs to know about a node, read from the node itself (cached per drill run)."""
from __future__ import annotations

import posixpath
import shlex

import yaml

from lab.exercises.kit.patroni_config import PATRONI_CONFIG, PATRONI_UNIT, deep_merge
from lab.exercises.kit.shell import Shell
from labcore.topology import Topology


class Facts:
    def __init__(self, topo: Topology, shell: Shell) -> None:
        self.topo = topo
        self.shell = shell
        self._config: dict[str, dict] = {}

    def patroni_config(self, node: str) -> dict:
        """Patroni's local configuration on the node, fragments merged as Patroni merges them."""
        name = self.topo.node(node).name
        if name not in self._config:
            # the directory is readable by postgres only: expand the glob under sudo
            script = (f"if [ -d {PATRONI_CONFIG} ]; then for f in {PATRONI_CONFIG}/*.yml; do echo ---; cat \"$f\"; "
                      f"done; else cat {PATRONI_CONFIG}.yml; fi")
            out = self.shell.run(name, f"sudo sh -c {shlex.quote(script)}")
            merged: dict = {}
            if out.ok:
                for doc in yaml.safe_load_all(out.stdout):
                    if isinstance(doc, dict):
                        deep_merge(merged, doc)
            self._config[name] = merged
        return self._config[name]

    def config_is_directory(self, node: str) -> bool:
        return self.shell.run(node, f"test -d {PATRONI_CONFIG}").ok

    def forget(self, node: str) -> None:
        self._config.pop(self.topo.node(node).name, None)

    def bin_dir(self, node: str) -> str:
        bin_dir = (self.patroni_config(node).get("postgresql") or {}).get("bin_dir")
        if bin_dir:
            return bin_dir.rstrip("/")
        out = self.shell.run(node, "ls -d /usr/lib/postgresql/*/bin /usr/pgsql-*/bin 2>/dev/null | tail -n1")
        return out.stdout.strip() or "/usr/lib/postgresql/15/bin"

    def data_dir(self, node: str) -> str:
        return (self.patroni_config(node).get("postgresql") or {}).get("data_dir") or self.topo.cluster.data_dir

    def unit_restart(self, node: str, unit: str = PATRONI_UNIT) -> str:
        """The unit's Restart= policy (the article's unit says no; Debian's package says on-failure)."""
        out = self.shell.run(node, f"systemctl show -p Restart --value {unit}")
        return out.stdout.strip() or "unknown"

    def unit_state(self, node: str, unit: str) -> str:
        return self.shell.run(node, f"systemctl is-active {unit}").stdout.strip() or "unknown"

    def has_command(self, node: str, cmd: str) -> bool:
        return self.shell.run(node, f"command -v {cmd} || test -x /usr/sbin/{cmd}").ok

    def watchdog(self, node: str) -> dict:
        """The node's local ``watchdog:`` settings ({} when none)."""
        return self.patroni_config(node).get("watchdog") or {}

    def fencer_state_file(self, node: str) -> str | None:
        """Where the containers' fencing watchdog service writes what it last did (None where there is none)."""
        wd = self.watchdog(node)
        if wd.get("driver") != "testing" or not wd.get("device"):
            return None
        return f"{posixpath.dirname(wd['device'])}/state"

    def fencer_state(self, node: str) -> str:
        """What the containers' fencing watchdog service last did on ``node`` ('' where there is none)."""
        path = self.fencer_state_file(node)
        if path is None:
            return ""
        out = self.shell.run(node, f"sudo cat {shlex.quote(path)} 2>/dev/null")
        return out.stdout.strip() if out.ok else ""
