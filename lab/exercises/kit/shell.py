"""Commands on the lab's nodes over ssh, exactly as a trainee would type them.

Each Shell keeps its own Fabric connections (one per node), so a background
monitor thread never shares an ssh transport with the drill's main thread.
Every command first passes the safety guard.
"""
from __future__ import annotations

import shlex
import subprocess
import threading
from dataclasses import dataclass
from typing import Protocol

from fabric import Connection

from labcore import guard
from labcore import remote
from labcore.topology import Topology


@dataclass
class Output:
    rc: int
    stdout: str
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0


class Shell(Protocol):
    def run(self, node: str, command: str, timeout: float = 60) -> Output:
        """Run ``command`` on ``node`` (name or member) and return its output; never raises on rc != 0."""


# Where a fault only a VM's host can make is typed (virsh on the lab's own domains): the control
# host, where the lab's CLI runs and, on libvirt, the VMs too. Node names are host names; this is not.
HOST = "the control host"


def run_on_host(command: str, timeout: float = 60) -> Output:
    """Run ``command`` on the control host, as the lab's user; never raises on rc != 0."""
    try:
        r = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout)
        return Output(r.returncode, r.stdout, r.stderr)
    except subprocess.TimeoutExpired:
        return Output(124, "", f"timed out after {timeout:g} s")


SILENCE_GRACE_S = 5.0        # past a command's timeout, how long a silent connection is given


class SshShell:
    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self._conns: dict[str, Connection] = {}

    def _conn(self, name: str) -> Connection:
        if name not in self._conns:
            self._conns[name] = remote.new_connection(name)
        return self._conns[name]

    def run(self, node: str, command: str, timeout: float = 60) -> Output:
        if node == HOST:
            return run_on_host(command, timeout)
        n = self.topo.node(node)
        guard.check(n.address, self.topo)
        conn = self._conn(n.name)
        answered = threading.Event()
        cut = threading.Thread(target=self._cut_if_silent, args=(conn, answered, timeout + SILENCE_GRACE_S),
                               daemon=True)
        cut.start()
        try:
            r = conn.run(command, hide=True, warn=True, timeout=timeout, in_stream=False)
            return Output(r.exited, r.stdout, r.stderr)
        except Exception as e:  # a dead transport, a timeout: report it, reconnect next time
            try:
                conn.close()
            except Exception:
                pass
            self._conns.pop(n.name, None)
            return Output(255, "", f"{type(e).__name__}: {e}")
        finally:
            answered.set()

    @staticmethod
    def _cut_if_silent(conn: Connection, answered: threading.Event, after: float) -> None:
        """Close the connection of a command that has not ended ``after`` seconds on: a machine
        powered off (or unplugged) never answers, and TCP would retransmit to it for a quarter of an
        hour before the command's own timeout could act. Closing it ends the waiting command."""
        if not answered.wait(after):
            try:
                conn.close()
            except Exception:
                pass

    def put(self, node: str, local: str, remote_path: str) -> Output:
        """Copy a file of the control host to ``remote_path`` on ``node`` (as the ssh user; sudo moves it on)."""
        n = self.topo.node(node)
        guard.check(n.address, self.topo)
        try:
            self._conn(n.name).put(local, remote_path)
            return Output(0, "")
        except Exception as e:
            self._conns.pop(n.name, None)
            return Output(255, "", f"{type(e).__name__}: {e}")

    def close(self) -> None:
        for c in self._conns.values():
            try:
                c.close()
            except Exception:
                pass
        self._conns.clear()


def ssh_hint(node: str) -> str:
    """How a trainee opens a shell on ``node`` (the lab's own ssh_config)."""
    return f"ssh -F {shlex.quote(remote.ssh_config_path())} {node}"
