"""Provisioning: the article's install steps, in its order, run against the lab's nodes.

Each step reads a node's state in one ssh round trip, changes only what
differs, and reports per node what it changed or why it did nothing. Steps run
node-parallel; Patroni and the standby cluster run in waves (the first member
bootstraps before the others join).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Iterable

from labcore import progress as lab_progress
from labcore.suggest import unknown
from labcore.topology import Node, Topology


class SelectionError(ValueError):
    """An unknown step or node name; the message lists the known ones."""


def selection(topo: Topology, steps: Iterable[str] | None, nodes: Iterable[str] | None):
    """The step modules and node names asked for; SelectionError names an unknown one."""
    from provision.steps import ORDER, STEPS

    chosen_steps = list(ORDER)
    if steps:
        wanted = list(steps)
        for s in wanted:
            if s not in STEPS:
                raise SelectionError(unknown("step", s, STEPS))
        chosen_steps = [m for m in ORDER if m.NAME in wanted]
    chosen_nodes = None
    if nodes:
        chosen_nodes = set()
        for n in nodes:
            try:
                chosen_nodes.add(topo.node(n).name)
            except KeyError:
                raise SelectionError(unknown("node", n, topo.names)) from None
    return chosen_steps, chosen_nodes


def run(topo: Topology, *, steps: Iterable[str] | None = None, nodes: Iterable[str] | None = None,
        report: Callable[[str], None] = print, platform: str | None = None,
        credentials: Any = None) -> int:
    """Run the provisioning steps; return how many changes were made.

    ``credentials`` (:class:`labcore.credentials.Credentials`) default to the lab's active profile.
    Unknown step or node names raise :class:`SelectionError` before any node is touched.
    """
    from labcore import credentials as lab_credentials
    from labcore import remote
    from labcore import state as lab_state
    from provision import engine, platforms, wheelhouse
    from provision.step import hooks
    from provision.context import NODE_FACTS_SCRIPT, Context, NodeFacts, parse_node_facts

    chosen_steps, chosen_nodes = selection(topo, steps, nodes)
    plat = platforms.for_lab(platform or lab_state.load().platform, topo)
    creds = credentials or lab_credentials.for_lab(topo)
    if plat.uses_wheelhouse and any(m.NAME in ("patroni", "standby") for m in chosen_steps):
        report(f"wheelhouse: {wheelhouse.ensure(plat.python, plat.patroni_spec)}")

    node_facts: dict[str, NodeFacts] = {}

    def facts_of(conn: Any, node: Node) -> NodeFacts:
        if node.name not in node_facts:
            out = conn.run(NODE_FACTS_SCRIPT.format(address=node.address), hide=True, warn=True).stdout
            node_facts[node.name] = parse_node_facts(out, node)
        return node_facts[node.name]

    def on_node(step: Any, node: Node, part: str | None) -> engine.NodeResult:
        conn = remote.connect(topo, node.name)
        ctx = Context(topo, node, plat, facts_of(conn, node), creds)
        resources = step.resources(ctx, part) if part else step.resources(ctx)
        changes = engine.plan(resources, engine.gather(conn, resources))
        engine.apply(conn, node.name, changes)
        changed = {c.key for c in changes}
        return engine.NodeResult(node.name, [c.what for c in changes],
                                 [r.noop() for r in resources if r.key not in changed])

    total = 0
    from provision.steps import ORDER

    progress = lab_progress.of(report)
    confirms: list[tuple[Any, Any, list[Node]]] = []   # (step, its confirm, the nodes it changed), checked at the end
    for step in chosen_steps:
        number = ORDER.index(step) + 1
        targets = [n for n in step.nodes(topo) if chosen_nodes is None or n.name in chosen_nodes]
        progress.step(number, len(ORDER), step.NAME, f"article §{step.SECTION}: {step.TITLE}")
        if not targets:
            progress("  ok: no selected node takes part in this step")
            progress.step_done()
            continue
        order, settle, confirm = hooks(step)
        waves = order(topo, targets)
        changed_nodes: list[Node] = []
        for wave in waves:
            wave_changes = 0
            with ThreadPoolExecutor(max_workers=len(wave.nodes)) as pool:
                futures = {pool.submit(on_node, step, n, wave.part): n for n in wave.nodes}
                # Each node's line as soon as that node is done, not when the whole wave is.
                for done in as_completed(futures):
                    r = done.result()
                    progress.node_done(r.line(step.NAME))
                    wave_changes += len(r.changes)
                    if r.changes and futures[done] not in changed_nodes:
                        changed_nodes.append(futures[done])
            total += wave_changes
            if wave_changes and settle is not None:
                with progress.waiting(f"{step.NAME}: waiting for the nodes to settle"):
                    settle(topo, wave, progress)
        if changed_nodes and confirm is not None:
            confirms.append((step, confirm, changed_nodes))
        progress.step_done()
    if confirms:
        progress.stage("confirm", "what the steps started and did not wait for: " +
                       ", ".join(step.NAME for step, _, _ in confirms))
        for step, confirm, changed_nodes in confirms:
            with progress.waiting(f"{step.NAME}: confirming what the step started"):
                confirm(topo, changed_nodes, progress)
        progress.step_done()
    report(f"provisioning: {total} change(s)")
    return total


def preview(topo: Topology, step: str, node: str, platform: str, *, iface: str = "eth1",
            container: bool = False, facts: list[str] | None = None, credentials: Any = None) -> list:
    """The changes a step would make on a node, without a machine (pure; for tests and fixtures).

    ``facts=None`` stands for a blank node where nothing is installed yet.
    """
    from provision import engine, platforms
    from provision.context import Context, NodeFacts
    from provision.steps import STEPS

    (module,), _ = selection(topo, [step], None)
    ctx = Context(topo, topo.node(node), platforms.for_lab(platform, topo), NodeFacts(iface, container), credentials)
    return engine.plan(module.resources(ctx), facts)
