"""Shared helpers for the provisioning unit tests: a loopback topology and a converged node's facts."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from labcore.topology import ROOT, Topology, parse
from provision import engine


def topology(**options) -> Topology:
    """The repository's topology, with extra options."""
    data = yaml.safe_load((ROOT / "topology.yml").read_text())
    data.setdefault("options", {}).update(options)
    return parse(data, ROOT / "topology.yml")


def loopback_topology(**options) -> Topology:
    """The same lab moved onto 127.0.1.0/24, so tools that connect (Patroni's validator) stay on this host."""
    data = yaml.safe_load((ROOT / "topology.yml").read_text())
    data = copy.deepcopy(data)
    old = data["lab"]["subnet"].rsplit(".", 1)[0]          # 192.168.234
    text = yaml.safe_dump(data).replace(old + ".", "127.0.1.")
    data = yaml.safe_load(text)
    data.setdefault("options", {}).update(options)
    return parse(data, Path("loopback-topology.yml"))


def converged_fact(r: engine.Resource) -> str:
    """What a resource's probe prints on a node where the resource is already in place."""
    if isinstance(r, engine.Packages):
        return "\n".join(r.names)
    if isinstance(r, engine.File):
        if r.content is None:
            return "absent"
        return f"{r.owner}:{r.group}:{int(r.mode, 8):o}\n{r.digest}"
    if isinstance(r, engine.Directory):
        return f"{r.owner}:{r.group}:{int(r.mode, 8):o}"
    if isinstance(r, engine.Service):
        return f"{'enabled' if r.enabled else 'disabled'}\n{'active' if r.running else 'inactive'}"
    if isinstance(r, engine.Command):
        return "done"
    raise TypeError(r)
