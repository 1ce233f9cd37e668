"""What a provisioning step is: a module of ``provision/steps/`` with these names.

A step declares NAME, SECTION, TITLE, ``nodes`` and ``resources``; the optional hooks (``waves``,
``settle``, ``confirm``) only where it needs them: the engine reads them through :func:`hooks`, which
gives the defaults (every node at once, no wait, nothing to confirm).
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

from labcore.topology import Node, Topology
from provision.engine import Resource, Wave

Report = Callable[[str], None]
Settle = Callable[[Topology, Wave, Report], None]
Confirm = Callable[[Topology, list[Node], Report], None]


@runtime_checkable
class Step(Protocol):
    NAME: str                  # `invoke provision --step NAME`
    SECTION: str               # the article's section it implements
    TITLE: str

    def nodes(self, topo: Topology) -> list[Node]:
        """The nodes this step configures."""

    def resources(self, ctx: Any, *part: str) -> list[Resource]:
        """The desired state of one node (of one ``part`` of the step, for a step in waves)."""

    def waves(self, topo: Topology, selected: list[Node]) -> list[Wave]:
        """Optional: the order in which the selected nodes are handled. Default: :func:`one_wave`."""

    settle: Settle | None
    """Optional: wait after a wave that changed something (e.g. a leader to be elected); None: no wait."""

    confirm: Confirm | None
    """Optional: a wait run once after the last step, given the nodes this step changed (e.g. the
    replicas to stream), so that it overlaps with the steps after it; None: nothing to check."""


def one_wave(topo: Topology, selected: list[Node]) -> list[Wave]:
    """The default order: every selected node at once."""
    return [Wave(selected)]


def hooks(step: Any) -> tuple[Callable[[Topology, list[Node]], list[Wave]], Settle | None, Confirm | None]:
    """A step's (waves, settle, confirm), each its own or the default."""
    return getattr(step, "waves", one_wave), getattr(step, "settle", None), getattr(step, "confirm", None)
