"""What the unit tier may not reach, and the stand-ins that say so when something tries.

The unit tier runs with no machines, no Docker engine and no network. ``conftest.py``
applies :class:`Guard` to every unit test:

* in the test process, connecting a socket anywhere but the loopback (or a Unix socket
  of a daemon under /run), resolving a host name, opening a PostgreSQL connection, or
  starting one of :data:`TOOLS` (or ``pip download/install/wheel``) raises
  :class:`Refused`, naming the test;
* processes the test starts (a real ``invoke`` command, a shell script) find a stub in
  front of each of :data:`TOOLS` on PATH that records the call and fails loudly, and a
  DOCKER_HOST and pip settings that reach nothing;
* every refusal is also written to a per-test log, so one that the code under test
  caught and swallowed still fails the test when it ends.

A test that really needs one of these belongs in tests/live; a test that runs a local
tool which only checks a file (``vagrant validate``) says so with
``@pytest.mark.local_tool("vagrant")`` and calls it by :func:`real_tool`.
"""
from __future__ import annotations

import inspect
import ipaddress
import os
import re
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

# Programs that reach machines, the Docker engine, a hypervisor or the network.
TOOLS = ("docker", "dockerd", "containerd", "podman", "vagrant", "virsh", "VBoxManage", "pulumi",
         "ssh", "scp", "sftp", "curl", "wget", "apt-get", "apt", "mmdebstrap", "debootstrap")
PIP_NETWORK = ("download", "install", "wheel", "index", "search")
# Daemons' sockets live here (docker.sock, libvirt-sock, containerd, dbus).
DAEMON_DIRS = ("/run/", "/var/run/")
SHELLS = ("sh", "bash", "dash")
LOG_ENV = "UNIT_TIER_REFUSED_LOG"     # where stubs and the guard record refused calls
STUBS_ENV = "UNIT_TIER_STUBS"         # the directory of the stubs' directories
STUB_EXIT = 97
NO_DOCKER = "unix:///nonexistent/the-unit-tier-has-no-docker-engine.sock"


# The caller's settings for the lab, Invoke, Vagrant, Pulumi, Docker and Patroni (whose config
# reads PATRONI_* over its files): none reaches a unit test.
CLEARED_PREFIXES = ("LAB_", "INVOKE_", "VAGRANT_", "PULUMI_", "DOCKER_", "CONTAINER_HOST", "PATRONI_")


def environment(environ: dict[str, str], stubs: list[Path], own: Path) -> dict[str, str]:
    """The environment of a unit test and of the processes it starts: ``environ`` without the
    caller's settings, its own lab directory and cache under ``own`` (not created: several tests
    check that a refused command leaves no lab directory), the stubs first on PATH, and a
    Docker host and pip settings that reach nothing."""
    env = {k: v for k, v in environ.items() if not k.startswith(CLEARED_PREFIXES)}
    env.update({
        "LAB_DIR": str(own / "lab"), "LAB_CACHE": str(own / "cache"),
        "PATH": os.pathsep.join([*map(str, stubs), environ.get("PATH", "")]),
        STUBS_ENV: str(stubs[0].parent), LOG_ENV: str(own / "refused.log"),
        "DOCKER_HOST": NO_DOCKER,
        "VAGRANT_CHECKPOINT_DISABLE": "1",          # Vagrant's version check is a web request
        "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull,   # no index, no config naming one
    })
    return env


class Refused(RuntimeError):
    """Something a unit test must not do; the message names the test and what it tried."""


def stub_dirs(base: Path) -> list[Path]:
    """One directory per tool (so a test can drop one tool from PATH and keep the others),
    each holding a stub that records its call in $UNIT_TIER_REFUSED_LOG and exits 97."""
    dirs = []
    for tool in TOOLS:
        d = base / tool
        d.mkdir(parents=True, exist_ok=True)
        stub = d / tool
        if not stub.exists():
            stub.write_text(
                "#!/bin/sh\n"
                f'echo "{tool} $*" >> "${{{LOG_ENV}:-/dev/null}}"\n'
                f'echo "unit tier: {tool} is not run by unit tests (called as: {tool} $*); '
                'see tests/unit/hermetic.py" >&2\n'
                f"exit {STUB_EXIT}\n")
            stub.chmod(0o755)
        dirs.append(d)
    return dirs


def real_tool(name: str) -> str:
    """The installed ``name``, looked up on PATH without the stubs (for a ``local_tool`` test)."""
    stubs = os.environ.get(STUBS_ENV, "")
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (stubs and d.startswith(stubs)))
    found = shutil.which(name, path=path)
    if not found:
        pytest.skip(f"{name} is not installed")
    return found


def _loopback(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    # connecting to 0.0.0.0 or :: reaches this host, as Patroni's listen-port check does
    return addr.is_loopback or addr.is_unspecified or bool(mapped and (mapped.is_loopback or mapped.is_unspecified))


def _local_name(host: Any) -> bool:
    """Names that resolve without asking a resolver: none, numeric addresses, localhost."""
    if host is None:
        return True
    h = host.decode() if isinstance(host, bytes) else str(host)
    if h in ("", "localhost", "localhost.localdomain") or h.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(h.split("%")[0])
        return True
    except ValueError:
        return False


def _words_run_by_shell(command: str) -> list[str]:
    """The first word of each simple command in a ``sh -c`` string (after sudo/env/exec and
    VAR=value prefixes): what the shell will run, not its arguments (``command -v pulumi``)."""
    out = []
    for piece in re.split(r"[;&|()\n`]|\$\(", command):
        try:
            words = shlex.split(piece)
        except ValueError:
            words = piece.split()
        prefix = False
        while words and (words[0] in ("sudo", "env", "exec", "nohup")
                         or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0])
                         or (prefix and words[0].startswith("-"))):
            prefix = prefix or words[0] in ("sudo", "env", "exec", "nohup")
            words = words[1:]
        if words:
            out.append(words[0])
    return out


@dataclass
class Guard:
    """The refusals of one unit test (see the module docstring)."""
    test: str
    log: Path
    tmp_root: str                 # pytest's temporary root: where the tests write their own fakes
    stubs: str                    # the stubs' directory (under tmp_root, but not a test's fake)
    allowed: frozenset[str] = frozenset()
    refused: list[str] = field(default_factory=list)

    # --- what is refused ------------------------------------------------------------------

    def refuse(self, what: str) -> None:
        self.refused.append(what)
        with open(self.log, "a") as f:       # also from a forked child, whose memory is lost
            f.write(what + "\n")
        raise Refused(f"{self.test} tried to {what}: the unit tier has no network, Docker engine or "
                      "machines (tests/unit/hermetic.py); use a fake, or move the test to tests/live")

    def check_address(self, family: int, address: Any) -> None:
        if family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if not _loopback(str(host)):
                self.refuse(f"connect to {address!r}")
        elif family == socket.AF_UNIX and isinstance(address, (str, bytes)):
            path = os.fsdecode(address)
            if path and not path.startswith("\0"):
                real = os.path.realpath(path)
                if (any(p.startswith(DAEMON_DIRS) for p in (path, real))
                        or os.path.basename(path) == "docker.sock"):
                    self.refuse(f"connect to the Unix socket {path}")

    def check_name(self, host: Any) -> None:
        if not _local_name(host):
            self.refuse(f"resolve the host name {host!r}")

    def _fake(self, executable: str, env: dict | None) -> bool:
        """A stand-in this test (or the stubs) wrote: it lives under pytest's temporary root."""
        path = executable if "/" in executable else shutil.which(
            executable, path=(env if env is not None else os.environ).get("PATH"))
        if not path:
            return False
        real = os.path.realpath(path)
        return real.startswith(self.tmp_root) and not real.startswith(self.stubs)

    def check_argv(self, argv: list[str], env: dict | None = None, executable: str | None = None) -> None:
        if not argv:
            return
        argv = [os.fsdecode(a) for a in argv]
        name = os.path.basename(executable or argv[0])
        if name in SHELLS and "-c" in argv[1:-1]:
            for word in _words_run_by_shell(argv[argv.index("-c", 1) + 1]):
                self.check_argv([word], env)
            return
        if name in TOOLS and name not in self.allowed and not self._fake(executable or argv[0], env):
            self.refuse(f"run {shlex.join(argv)}")
        if re.fullmatch(r"pip(3(\.\d+)?)?", name) and len(argv) > 1 and argv[1] in PIP_NETWORK:
            self.refuse(f"run {shlex.join(argv)}")
        if (re.fullmatch(r"python(3(\.\d+)?)?", name) and argv[1:3] == ["-m", "pip"]
                and len(argv) > 3 and argv[3] in PIP_NETWORK):
            self.refuse(f"run {shlex.join(argv)}")

    # --- where it is enforced -------------------------------------------------------------

    def install(self, mp: pytest.MonkeyPatch) -> None:
        guard = self
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        real_sendto = socket.socket.sendto

        def connect(sock: socket.socket, address: Any) -> Any:
            guard.check_address(sock.family, address)
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            guard.check_address(sock.family, address)
            return real_connect_ex(sock, address)

        def sendto(sock: socket.socket, data: bytes, *rest: Any) -> Any:
            guard.check_address(sock.family, rest[-1])
            return real_sendto(sock, data, *rest)

        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setattr(socket.socket, "sendto", sendto)
        for fn in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
            mp.setattr(socket, fn, self._resolver(getattr(socket, fn)))

        real_execute = subprocess.Popen._execute_child
        signature = inspect.signature(real_execute)

        def execute_child(popen: subprocess.Popen, *args: Any, **kwargs: Any) -> Any:
            call = signature.bind(popen, *args, **kwargs)
            bound = call.arguments
            cmd = bound["args"]
            argv = [cmd] if isinstance(cmd, (str, bytes, os.PathLike)) else list(cmd)
            if bound.get("shell"):
                argv = ["sh", "-c", os.fsdecode(argv[0])]
            guard.check_argv([os.fspath(a) for a in argv], bound.get("env"), bound.get("executable"))
            if bound.get("env") is not None:
                bound["env"] = guard.child_env(bound["env"])
            return real_execute(*call.args, **call.kwargs)

        mp.setattr(subprocess.Popen, "_execute_child", execute_child)
        mp.setattr(os, "system", self._wrap_shell(os.system))
        for fn in ("execv", "execve", "execvp", "execvpe"):
            mp.setattr(os, fn, self._wrap_exec(getattr(os, fn)))
        for fn in ("posix_spawn", "posix_spawnp"):
            mp.setattr(os, fn, self._wrap_exec(getattr(os, fn)))
        try:
            import psycopg2
        except ImportError:
            return

        def pg_connect(*args: Any, **kwargs: Any) -> Any:
            guard.refuse(f"open a PostgreSQL connection ({args or kwargs!r})")

        mp.setattr(psycopg2, "connect", pg_connect)

    def child_env(self, env: Any) -> Any:
        """An environment a test wrote for a child process (``{"PATH": "/usr/bin:/bin"}``) gets the
        stubs on PATH before the system's directories (after the test's own fakes), their log and the Docker host that reaches nothing; one that already
        holds a stub directory (a test that left out one tool on purpose) is kept as it is."""
        stub_dirs = [os.path.join(self.stubs, t) for t in TOOLS]
        path = os.fsdecode(env.get("PATH", env.get(b"PATH", b"")) or "")
        if any(d in path.split(os.pathsep) for d in stub_dirs) or not isinstance(next(iter(env), ""), str):
            return env
        dirs = [d for d in path.split(os.pathsep) if d]
        # the test's own fakes (under the temporary root) stay ahead of the stubs
        n = next((i for i, d in enumerate(dirs) if not os.path.realpath(d).startswith(self.tmp_root)), len(dirs))
        return {**env, "PATH": os.pathsep.join([*dirs[:n], *stub_dirs, *dirs[n:]]),
                LOG_ENV: str(self.log), "DOCKER_HOST": env.get("DOCKER_HOST", NO_DOCKER)}

    def _resolver(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
            self.check_name(host)
            return real(host, *args, **kwargs)
        return resolve

    def _wrap_shell(self, real: Callable[[str], int]) -> Callable[[str], int]:
        def system(command: str) -> int:
            self.check_argv(["sh", "-c", command])
            return real(command)
        return system

    def _wrap_exec(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def execute(path: Any, argv: Any, *rest: Any, **kwargs: Any) -> Any:
            env = rest[0] if rest and isinstance(rest[0], dict) else kwargs.get("env")
            self.check_argv([os.fspath(a) for a in argv] or [os.fspath(path)], env, os.fspath(path))
            return real(path, argv, *rest, **kwargs)
        return execute

    def take(self) -> list[str]:
        """The refused calls so far, forgotten (for a test that provokes one on purpose)."""
        seen = self.logged()
        self.log.unlink(missing_ok=True)
        self.refused.clear()
        return seen

    def logged(self) -> list[str]:
        """Every refused call of this test: the guard's and the stubs' (from child processes)."""
        try:
            return [line for line in self.log.read_text().splitlines() if line]
        except FileNotFoundError:
            return []
