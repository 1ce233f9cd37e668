"""A small desired-state engine (pyinfra's model, cut to what the lab needs).

A step declares resources for one node. The engine
1. gathers the facts of all of them in ONE ssh round trip (a shell script that
   prints one section per resource),
2. plans: a pure function from (resources, facts) to the changes still needed,
   testable without machines,
3. applies the changes in order and reports what changed, or why nothing did.
"""
from __future__ import annotations

import base64
import hashlib
import shlex
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from labcore import remote

MARK = "@@patroni-lab-fact@@"


class ProvisionError(RuntimeError):
    """A change that failed on a node; the message names node, change and the tail of its output."""


@dataclass
class Change:
    key: str                          # the resource that needs it
    what: str                         # one line for the report
    commands: list[str]               # run in order as root, stop at the first failure
    upload: tuple[str, str] | None = None   # (local path, remote path) copied before the commands


class Resource(Protocol):
    key: str

    def probe(self) -> str:
        """Shell that prints this resource's current state (run as root)."""

    def plan(self, fact: str, changed: set[str]) -> Change | None:
        """The change needed, or None; ``changed`` holds keys already changed in this step."""

    def noop(self) -> str:
        """Why nothing is needed, in a few words."""


def _q(s: str) -> str:
    return shlex.quote(s)


# --- resources ----------------------------------------------------------------

@dataclass
class Packages:
    names: tuple[str, ...]
    fact_script: str                  # platform's "print installed among $@"
    install: str                      # platform's install template with {pkgs}
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or "packages:" + ",".join(self.names)

    def probe(self) -> str:
        return f"set -- {' '.join(map(_q, self.names))}; {self.fact_script}"

    def plan(self, fact: str, changed: set[str]) -> Change | None:
        have = set(fact.split())
        missing = [n for n in self.names if n not in have]
        if not missing:
            return None
        return Change(self.key, f"install {' '.join(missing)}",
                      [self.install.replace("{pkgs}", " ".join(missing))])

    def noop(self) -> str:
        return f"{', '.join(self.names)} installed"


@dataclass
class File:
    path: str
    content: str | None               # None = the file must not exist
    owner: str = "root"
    group: str = "root"
    mode: str = "644"
    after: tuple[str, ...] = ()       # extra commands when the file changes (e.g. daemon-reload)
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or "file:" + self.path

    @property
    def digest(self) -> str:
        return hashlib.sha256((self.content or "").encode()).hexdigest()

    def probe(self) -> str:
        p = _q(self.path)
        return (f"if [ -f {p} ]; then stat -c '%U:%G:%a' {p}; sha256sum < {p} | cut -d' ' -f1; "
                f"else echo absent; fi")

    def plan(self, fact: str, changed: set[str]) -> Change | None:
        lines = fact.split()
        p = _q(self.path)
        if self.content is None:
            if lines[:1] == ["absent"] or not lines:
                return None
            return Change(self.key, f"remove {self.path}", [f"rm -f {p}", *self.after])
        meta = f"{self.owner}:{self.group}:{int(self.mode, 8):o}"
        fix_meta = [f"chown {self.owner}:{self.group} {p}", f"chmod {self.mode} {p}"]
        if len(lines) == 2 and lines[1] == self.digest:
            if lines[0] == meta:
                return None
            return Change(self.key, f"set {meta} on {self.path}", fix_meta)
        payload = base64.b64encode(self.content.encode()).decode()
        # Write beside the target, fix owner and mode, then rename: readers never see half a file.
        tmp = _q(self.path + ".patroni-lab.tmp")
        verb = "write" if not lines or lines[0] == "absent" else "update"
        return Change(self.key, f"{verb} {self.path}", [
            f"mkdir -p {_q(self.path.rsplit('/', 1)[0] or '/')}",
            f"echo {payload} | base64 -d > {tmp}",
            f"chown {self.owner}:{self.group} {tmp}", f"chmod {self.mode} {tmp}",
            f"mv -f {tmp} {p}", *self.after])

    def noop(self) -> str:
        return f"{self.path} up to date" if self.content is not None else f"{self.path} absent"


@dataclass
class Directory:
    path: str
    owner: str = "root"
    group: str = "root"
    mode: str = "755"
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or "dir:" + self.path

    def probe(self) -> str:
        p = _q(self.path)
        return f"if [ -d {p} ]; then stat -c '%U:%G:%a' {p}; else echo absent; fi"

    def plan(self, fact: str, changed: set[str]) -> Change | None:
        meta = f"{self.owner}:{self.group}:{int(self.mode, 8):o}"
        if fact.strip() == meta:
            return None
        p = _q(self.path)
        verb = "create" if fact.strip() in ("absent", "") else f"set {meta} on"
        return Change(self.key, f"{verb} {self.path}",
                      [f"mkdir -p {p}", f"chown {self.owner}:{self.group} {p}", f"chmod {self.mode} {p}"])

    def noop(self) -> str:
        return f"{self.path} present"


@dataclass
class Service:
    name: str
    enabled: bool = True
    running: bool = True
    restart_on: tuple[str, ...] = ()  # resource keys whose change needs a restart
    reload_on: tuple[str, ...] = ()   # ... or only a reload
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or "service:" + self.name

    def probe(self) -> str:
        n = _q(self.name)
        return f"systemctl is-enabled {n} 2>/dev/null || true; systemctl is-active {n} 2>/dev/null || true"

    def plan(self, fact: str, changed: set[str]) -> Change | None:
        lines = fact.split() + ["", ""]
        is_enabled, is_active = lines[0] == "enabled", lines[1] == "active"
        n = _q(self.name)
        cmds, what = [], []
        if self.enabled and not is_enabled:
            cmds.append(f"systemctl enable {n}")
            what.append("enable")
        if not self.enabled and is_enabled:
            cmds.append(f"systemctl disable {n}")
            what.append("disable")
        watched = changed & (set(self.restart_on) | set(self.reload_on))
        # Stopped when facts were read but a watched file changed: restart, not start, because
        # installing the package in this same step may have started it with its defaults.
        if self.running and (changed & set(self.restart_on) or (watched and not is_active)):
            cmds.append(f"systemctl restart {n}")
            what.append("restart")
        elif self.running and not is_active:
            cmds.append(f"systemctl start {n}")
            what.append("start")
        elif self.running and watched:
            cmds.append(f"systemctl reload {n}")
            what.append("reload")
        if not self.running and is_active:
            cmds.append(f"systemctl stop {n}")
            what.append("stop")
        if not cmds:
            return None
        return Change(self.key, f"{' + '.join(what)} {self.name}", cmds)

    def noop(self) -> str:
        return f"{self.name} {'enabled, ' if self.enabled else ''}{'running' if self.running else 'stopped'}"


@dataclass
class Command:
    """A command guarded by a check: it runs only when ``unless`` fails."""
    name: str                         # what it achieves, for the report
    commands: tuple[str, ...]
    unless: str
    upload: tuple[str, str] | None = None
    settled_by: tuple[str, ...] = ()  # keys whose change in this step already does the job
    key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or "cmd:" + self.name

    def probe(self) -> str:
        return f"if ( {self.unless} ) >/dev/null 2>&1; then echo done; else echo needed; fi"

    def plan(self, fact: str, changed: set[str]) -> Change | None:
        if fact.strip() == "done" or changed & set(self.settled_by):
            return None
        return Change(self.key, self.name, list(self.commands), upload=self.upload)

    def noop(self) -> str:
        return f"{self.name}: already so"


# --- facts, plan, apply -----------------------------------------------------------

def fact_script(resources: Iterable[Resource]) -> str:
    """One shell script printing a marked section per resource."""
    parts = ["exec 2>/dev/null"]
    for i, r in enumerate(resources):
        parts.append(f"echo '{MARK}{i}'")
        parts.append(f"( {r.probe()} )")
    return "\n".join(parts) + "\n"


def parse_facts(output: str, count: int) -> list[str]:
    facts = [""] * count
    current = None
    for line in output.splitlines():
        if line.startswith(MARK):
            current = int(line[len(MARK):])
            continue
        if current is not None:
            facts[current] += line + "\n"
    return facts


def plan(resources: list[Resource], facts: list[str] | None) -> list[Change]:
    """Pure: the changes still needed. ``facts=None`` means a blank node (nothing present)."""
    facts = facts if facts is not None else [""] * len(resources)
    changed: set[str] = set()
    out: list[Change] = []
    for r, f in zip(resources, facts):
        c = r.plan(f, changed)
        if c is not None:
            changed.add(r.key)
            out.append(c)
    return out


def gather(conn: Any, resources: list[Resource]) -> list[str]:
    r = remote.run_as_root(conn, fact_script(resources))
    return parse_facts(r.stdout, len(resources))


FAILED = "@@patroni-lab-failed@@"


def apply_script(changes: list[Change]) -> str:
    """One script for all the changes, in order: each in its own ``set -e`` subshell, the
    first failure names its change (by index, on stderr) and stops the rest."""
    parts = []
    for i, c in enumerate(changes):
        parts.append("(\nset -e\n" + "\n".join(c.commands) + "\n)")
        parts.append(f"rc=$?; if [ $rc -ne 0 ]; then echo '{FAILED}{i}' >&2; exit $rc; fi")
    return "\n".join(parts) + "\n"


def apply(conn: Any, node: str, changes: list[Change]) -> None:
    """Upload what the changes need, then run them all in ONE ssh round trip."""
    if not changes:
        return
    for c in changes:
        if c.upload:            # uploads go to scratch paths that no earlier change touches
            local, scratch = c.upload
            conn.put(local, scratch)
    r = remote.run_as_root(conn, apply_script(changes))
    if r.exited != 0:
        before, _, index = r.stderr.rpartition(FAILED)
        failed = changes[int(index.split()[0])] if index.strip().isdigit() else None
        tail = (before.strip() or r.stdout.strip()).splitlines()[-3:]
        what = failed.what if failed else "applying the changes"
        raise ProvisionError(f"{node}: {what} failed (exit {r.exited}): {' | '.join(tail)}")


@dataclass
class Wave:
    """Nodes a step handles together, and optionally which part of the step (e.g. install, start)."""
    nodes: list[Any]
    part: str | None = None


@dataclass
class NodeResult:
    node: str
    changes: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)

    def line(self, step: str) -> str:
        if self.changes:
            # What was found done is shown too: "ok: chrony installed" on a preinstalled node.
            found = f"; ok: {'; '.join(self.ok)}" if self.ok else ""
            return f"  {self.node}: changed: {'; '.join(self.changes)}{found}"
        return f"  {self.node}: ok: {'; '.join(self.ok) or 'nothing to do'}"
