"""Machine commands: up, status, ssh, down, rebuild.

Thin wrappers over :mod:`lab.lifecycle`; every error is one line on stderr and
a non-zero exit. Settings come from invoke.yaml's ``lab`` section, overridden
by ``INVOKE_LAB_*`` environment variables and by options.
"""
from __future__ import annotations

import os
import shutil
from typing import Any

from invoke import Exit, task
from rich.console import Console

from lab import lifecycle, settings as lab_settings, sshconfig, status as lab_status
from labcore import exitcodes, guard, topology
from labcore import progress as lab_progress
from lab.providers import image
from labcore import state as lab_state
from lab.providers.base import ProviderError

PROVIDER_HELP = "docker | libvirt | virtualbox | pulumi | hosts (default: invoke.yaml lab.provider, auto = detect)"
ERRORS = (topology.TopologyError, lab_state.LabStateError, ProviderError, guard.GuardError,
          lifecycle.LabError, image.ImageError, lab_settings.SettingsError)

console = Console(highlight=False)


def settings(c: Any) -> dict[str, Any]:
    """The ``lab`` section of the Invoke configuration (invoke.yaml + INVOKE_LAB_* env), checked."""
    lab = c.config.get("lab") if hasattr(c, "config") else None
    return lab_settings.validate({k: lab[k] for k in lab} if lab else {})


def reporter() -> lab_progress.Reporter:
    """Plain lines, each with the seconds since the command started."""
    return lab_progress.Reporter(console)


def fail(e: Exception) -> Exit:
    """One line on stderr; exit 2 if nothing was changed (a refusal), else 1 (labcore.exitcodes)."""
    return Exit(f"error: {e}", code=exitcodes.code_for(e))


FROM_SCRATCH_HELP = ("docker: start from the plain node image, so every step installs its packages "
                     "(default: the image with the steps' packages preinstalled)")


@task(help={"provider": PROVIDER_HELP,
            "machines_only": "create the machines and stop before provisioning",
            "rotate_secrets": "secure profile: new passwords in PostgreSQL, Patroni, etcd and $LAB_DIR/secrets.yml",
            "from_scratch": FROM_SCRATCH_HELP})
def up(c, provider=None, machines_only=False, rotate_secrets=False, from_scratch=False):
    """Create the 4 machines, then provision them (on a lab that is up: provision again)."""
    from labcore.credentials import CredentialsError
    try:
        topo = topology.load()
        cfg = settings(c)
        if from_scratch:
            if lab_state.load().is_up:
                raise lifecycle.LabError("--from-scratch needs new machines and the lab is up: "
                                         "run `invoke rebuild --from-scratch`")
            cfg["from_scratch"] = True
        name, why = lifecycle.provider_choice(provider, cfg)
        # Said before anything is created, so a wrong choice costs nothing.
        console.print(f"provider {name} ({why}); {lifecycle.HOW_TO_CHOOSE}", soft_wrap=True)
        # In a terminal: a live status line (step n/11, what it waits for, seconds) under the log.
        progress = lab_progress.for_console(console)
        with progress:
            st = lifecycle.up(topo, name, cfg, progress, machines_only=machines_only,
                              rotate_secrets=rotate_secrets)
    except (*ERRORS, CredentialsError) as e:
        raise fail(e) from None
    progress.summary(st.timings)
    console.print(f"the lab is {st.phase}: `invoke status`, `invoke ssh {topo.names[0]}`")


@task(help={"provider": PROVIDER_HELP + "; used to find leftovers when no state is recorded"})
def down(c, provider=None):
    """Remove every machine and network of the lab (images and package cache are kept)."""
    try:
        topo = topology.load()
        cfg = settings(c)
        lifecycle.down(topo, provider, cfg, reporter())
    except ERRORS as e:
        raise fail(e) from None
    from lab.providers.vagrant import apt_cache
    console.print(f"the lab is down; kept the image {image.NODE_IMAGE} and the package cache "
                  f"{apt_cache(cfg)} for the next `invoke up`")


@task(help={"provider": PROVIDER_HELP, "from_scratch": FROM_SCRATCH_HELP})
def rebuild(c, provider=None, from_scratch=False):
    """Tear the lab down and bring it up again on new machines."""
    down(c, provider=provider)
    up(c, provider=provider, from_scratch=from_scratch)


@task(help={"watch": "redraw the cluster view every second until Ctrl-C",
            "check": "exit non-zero with one line per finding off the healthy baseline (the drills' gate)"})
def status(c, watch=False, check=False):
    """Show the machines, Patroni's view, VIP holders, haproxy backends and etcd health."""
    if check:
        from lab.cli import health
        return health.check()
    try:
        topo = topology.load()
        st = lab_state.load()
        if not st.is_up:
            # Nothing is contacted before the lab exists.
            console.print("the lab is not up (run `invoke up`)")
            if watch:
                raise Exit(code=2)
            return
        if watch:
            from lab.cli import watch as watching
            watching.watch(watching.concurrent_sections(topo, st), console)
            return
        sections = lab_status.collect(topo, st, settings(c))
    except ERRORS as e:
        raise fail(e) from None
    from lab.cli.watch import section_table
    for sec in sections:
        console.print(section_table(sec))
        if sec.note:
            console.print(sec.note)


@task(help={"node": "node name or Patroni member name (node1, pg1, ...)",
            "command": "run this command instead of an interactive shell"})
def ssh(c, node, command=""):
    """Open a shell on a node (or run one command) through the lab's ssh_config."""
    try:
        topo = topology.load()
        try:
            n = topo.node(node)     # a typo is named before the lab's state is looked at
        except KeyError as e:
            raise Exit(f"error: ssh: {e.args[0]}", code=exitcodes.REFUSED) from None
        st = lab_state.require("created", "provisioned", action=f"ssh to {node}")
        guard.check(n.address, topo, st)
    except ERRORS as e:
        raise fail(e) from None
    args = ["ssh", "-F", str(sshconfig.path()), n.name] + ([command] if command else [])
    os.execvp(shutil.which("ssh") or "ssh", args)


TASKS = [up, status, ssh, down, rebuild]
