"""The lab's lifecycle: up (create -> reach -> provision) and down.

``up`` either finishes a phase or leaves no trace of it: a failure while
creating removes what was created and clears the state; a failure while
provisioning keeps the machines (phase ``created``) and says what to run next.
Running ``up`` on a lab that is already up reuses the machines and provisions
again, which converges (a second run changes nothing).
"""
from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

from lab import sshconfig
from labcore import guard
from labcore import progress as lab_progress
from labcore import state as lab_state
from lab import providers
from labcore.exitcodes import Refusal
from lab.providers.base import Machines, Provider, ProviderError
from labcore.topology import Topology
from labcore import poll

Report = Callable[[str], None]


class LabError(RuntimeError):
    """A lifecycle step that cannot go on; the message is one line and says what to do."""


class Refused(Refusal, LabError):
    """The lifecycle refused before creating anything (wrong order, a missing prerequisite)."""


HOW_TO_CHOOSE = ("choose another with `invoke up --provider NAME`, INVOKE_LAB_PROVIDER=NAME "
                 "or lab.provider in invoke.yaml")


def provider_choice(requested: str | None, settings: Mapping[str, Any]) -> tuple[str, str]:
    """The provider named by option, else by configuration, else detected here; and why."""
    if requested:
        name, why = requested, "from --provider"
    elif settings.get("provider") and settings["provider"] != "auto":
        name, why = settings["provider"], "from INVOKE_LAB_PROVIDER or invoke.yaml lab.provider"
    else:
        from lab.providers.vagrant import detect
        name, why = detect()
        why = f"auto: {why}"
    if name not in providers.NAMES:
        from labcore.suggest import unknown
        raise Refused(f"provider: {unknown('provider', name, ('auto',) + providers.NAMES)}")
    return name, why


def choose_provider(requested: str | None, settings: Mapping[str, Any]) -> str:
    """The provider named by option, else by configuration, else detected on this host."""
    return provider_choice(requested, settings)[0]


def expected_interface(prov: Provider, topo: Topology, st: lab_state.State) -> str | None:
    """The lab network's host interface if it is known before creating anything."""
    if st.is_up and st.interface:
        return st.interface
    return prov.expected_interface(topo) or (topo.bridge if prov.name == "docker" else None)


def verify_routes(topo: Topology, machines: Machines) -> None:
    """Every lab address must now be routed through the lab's own interface."""
    for n in topo.nodes:
        dev = guard.route_interface(n.address)
        if dev != machines.interface:
            raise guard.GuardError(f"{n.name} ({n.address}) is routed via {dev or 'nothing'}, "
                                   f"not the lab network {machines.interface}")


def ssh_answers(node: str, timeout: int = 10) -> bool:
    """One ssh round trip through the lab's ssh_config (the caller ran the guard)."""
    try:
        r = subprocess.run(["ssh", "-F", str(sshconfig.path()), "-o", "BatchMode=yes",
                            "-o", f"ConnectTimeout={timeout}", node, "true"],
                           capture_output=True, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


def wait_for_ssh(topo: Topology, st: lab_state.State, timeout: float, report: Report) -> None:
    """Bounded poll until every node answers ssh."""
    for n in topo.nodes:
        guard.check(n.address, topo, st)
    pending = list(topo.names)

    def all_answer() -> bool:
        # All nodes at once: one round trip each, not one after the other.
        with ThreadPoolExecutor(max_workers=len(pending)) as pool:
            answered = list(pool.map(lambda n: ssh_answers(n, timeout=5), pending))
        pending[:] = [n for n, ok in zip(pending, answered) if not ok]
        return not pending
    try:
        poll.wait_for("ssh on every node", all_answer, timeout, every=0.5)
    except poll.WaitTimeout:
        raise LabError(f"no ssh answer from {', '.join(pending)} within {poll.scaled(timeout):.0f} s "
                       f"(try `ssh -F {sshconfig.path()} {pending[0]}`)") from None
    report(f"ssh answers on {', '.join(topo.names)}")


def _rollback(prov: Provider, topo: Topology, report: Report) -> None:
    report("creation failed: removing what was created")
    try:
        prov.destroy(topo, report)
    except Exception as e:  # the original error matters more; say this one too
        report(f"cleanup incomplete ({e}); run `invoke down`")
    sshconfig.remove()
    lab_state.clear()


def create(topo: Topology, provider_name: str, settings: Mapping[str, Any], report: Report) -> lab_state.State:
    """Create (or reuse) the machines and make them reachable; phase becomes ``created``."""
    st = lab_state.load()
    if st.is_up and st.provider != provider_name:
        raise Refused(f"the lab is up with provider {st.provider}; run `invoke down` before using {provider_name}")
    if st.is_up and st.topology and st.topology != str(topo.path):
        raise Refused(f"the lab in {lab_state.lab_dir()} was built from {st.topology}, not {topo.path}; "
                      "run `invoke down` first or use another LAB_DIR")
    try:
        prov = providers.get(provider_name, settings)
        prov.preflight(topo)
    except ProviderError as e:       # nothing exists yet: a missing prerequisite is a refusal
        raise Refused(str(e)) from None
    guard.check_subnet_free(topo, expected_interface(prov, topo, st))

    reuse = st.is_up
    report(("reusing" if reuse else "creating") + f" {len(topo.nodes)} machines with provider {provider_name}")
    t0 = time.monotonic()
    try:
        machines = prov.create(topo, report)
        verify_routes(topo, machines)
        sshconfig.write(topo, machines)
        st = lab_state.State(phase="created", provider=provider_name, platform=machines.platform,
                             interface=machines.interface, topology=str(topo.path),
                             profile=st.profile if reuse else None,
                             timeout_scale=machines.timeout_scale,
                             timings={"create": round(time.monotonic() - t0, 1)})
        lab_state.save(st)
        with lab_progress.of(report).waiting("waiting until every node answers ssh"):
            wait_for_ssh(topo, st, float(settings.get("ssh_wait") or 180), report)
    except BaseException:
        if not reuse:
            _rollback(prov, topo, report)
        raise
    st.timings["machines"] = round(time.monotonic() - t0, 1)
    lab_state.save(st)
    report(f"machines ready in {st.timings['machines']:.1f} s "
           f"(created in {st.timings['create']:.1f} s); ssh: ssh -F {sshconfig.path()} {topo.names[0]}")
    return st


def deployed_profile(topo: Topology) -> str | None:
    """The profile an existing Patroni configuration on the first member was written for, or None
    (nothing there yet). Matters where `down` keeps the machines (the hosts provider): the state
    file is gone, the cluster and its passwords are not. One ssh round trip."""
    from labcore import remote
    from provision.steps.patroni import CONFIG

    r = remote.connect(topo, topo.postgres_nodes[0].name).run(
        f"sudo -n grep -c '^  allowlist:' {CONFIG}", hide=True, warn=True, timeout=30)
    if r.exited == 0:
        return "secure"
    return "article" if r.exited == 1 else None      # grep: 1 = no match, 2 = no file


def provision(topo: Topology, report: Report, *, rotate_secrets: bool = False) -> lab_state.State:
    """Provision running machines; phase becomes ``provisioned`` only when every step passed."""
    st = lab_state.require("created", "provisioned", action="provision")
    import provision as provisioning  # late: the provisioning package may be replaced while we run
    from labcore import credentials

    profile, why = credentials.choose(topo, st.provider)
    # Only the hosts provider's `down` keeps the machines (and the cluster) while forgetting the state.
    previous = st.profile or (deployed_profile(topo) if st.provider == "hosts" else None)
    if previous and previous != profile:
        raise LabError(f"the lab was provisioned with the {previous} profile and would now get {profile} "
                       f"({why}); PostgreSQL and etcd keep what they were set up with, so switching needs "
                       "new machines (`invoke rebuild`), or on your own hosts a cluster removed by hand first")
    report(f"security profile: {profile} ({why})")
    if rotate_secrets:
        if profile != "secure" or st.profile != "secure":
            raise LabError("--rotate-secrets needs a provisioned lab in the secure profile "
                           "(the article profile's passwords are the article's)")
        from lab import rotation
        rotation.rotate(topo, report)
    creds = credentials.build(topo, profile, source=credentials.control_source(topo))
    st.phase = "created"
    lab_state.save(st)
    t0 = time.monotonic()
    try:
        provisioning.run(topo, report=report, credentials=creds)
    except Exception as e:
        raise LabError(f"provisioning failed: {e}; the machines are kept: fix it and run "
                       "`invoke provision`, or remove them with `invoke down`") from e
    st.timings["provision"] = round(time.monotonic() - t0, 1)
    st.phase = "provisioned"
    st.profile = profile
    lab_state.save(st)
    report(f"provisioned in {st.timings['provision']:.1f} s")
    return st


def up(topo: Topology, provider_name: str, settings: Mapping[str, Any], report: Report,
       *, machines_only: bool = False, rotate_secrets: bool = False) -> lab_state.State:
    st = create(topo, provider_name, settings, report)
    return st if machines_only else provision(topo, report, rotate_secrets=rotate_secrets)


def down(topo: Topology, provider_name: str | None, settings: Mapping[str, Any], report: Report) -> None:
    """Remove every machine and network the lab created (from its state, or from leftovers)."""
    try:
        recorded = lab_state.load().provider
    except lab_state.LabStateError:
        recorded = None                  # an unreadable state must not block the cleanup
    names = [n for n in (recorded, choose_provider(provider_name, settings)) if n]
    if recorded and not provider_name:
        # The state names who built the lab: an auto-detected provider must not sweep
        # machines it never created (the hosts provider's machines may be another lab's).
        names = [recorded]
    for name in dict.fromkeys(names):
        try:
            prov = providers.get(name, settings)
        except ProviderError as e:
            report(f"skipping {name}: {e}")
            continue
        prov.destroy(topo, report)
    sshconfig.remove()
    lab_state.clear()
