"""Provisioning command: run the article's steps (all, or some) against the running lab."""
from __future__ import annotations

from invoke import Exit, task

from lab import lifecycle
from labcore import exitcodes, guard, topology
from labcore import state as lab_state
from lab.cli.machines import console, reporter

ERRORS = (topology.TopologyError, lab_state.LabStateError, guard.GuardError, lifecycle.LabError)


def _names(values: list[str] | None) -> list[str] | None:
    """Accept repeated options and comma-separated lists alike."""
    out = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    return out or None


@task(iterable=["step", "node"],
      help={"step": "only this step (repeat or comma-separate; `invoke provision --list-steps` names them)",
            "node": "only this node (node1 or pg1; repeat or comma-separate)",
            "list_steps": "print the steps in their order with the article's sections, then stop"})
def provision(c, step=None, node=None, list_steps=False):
    """Provision the running lab: each step changes only what differs and says what it did."""
    import provision as provisioning
    from provision.steps import ORDER

    if list_steps:
        for number, m in enumerate(ORDER, 1):
            console.print(f"{number:2}. {m.NAME:<11} article §{m.SECTION:<4} {m.TITLE}")
        return
    steps, nodes = _names(step), _names(node)
    try:
        topo = topology.load()
        # Names are checked before anything is contacted: a typo changes nothing.
        provisioning.selection(topo, steps, nodes)
        if not steps and not nodes:
            lifecycle.provision(topo, reporter())
            return
        st = lab_state.require("created", "provisioned", action="provision")
        try:
            provisioning.run(topo, steps=steps, nodes=nodes, report=reporter())
        except KeyboardInterrupt:
            # An interrupted step may be half applied: only a full run calls the lab provisioned again.
            st.phase = "created"
            lab_state.save(st)
            raise
    except provisioning.SelectionError as e:
        raise Exit(f"error: {e}", code=exitcodes.REFUSED) from None
    except ERRORS as e:
        raise Exit(f"error: {e}", code=exitcodes.code_for(e)) from None
    except Exception as e:       # a failed change: one line, the machines are kept as they are
        raise Exit(f"error: provisioning failed: {e}", code=1) from None


TASKS = [provision]
