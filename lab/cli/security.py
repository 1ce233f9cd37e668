"""Security commands: `invoke secrets` (who logs in where) and `invoke audit` (what is open)."""
from __future__ import annotations

from invoke import Exit, task

from labcore import credentials, topology
from labcore import state as lab_state


@task(help={"show": "print the passwords themselves (default: masked)",
            "env": "print `export` lines (PGUSER, PGPASSWORD, ETCDCTL_USER) for a shell on this host"})
def secrets(c, show=False, env=False):
    """The lab's users and passwords for its security profile (masked unless --show)."""
    try:
        topo = topology.load()
        creds = credentials.for_lab(topo)
    except (topology.TopologyError, lab_state.LabStateError, credentials.CredentialsError) as e:
        raise Exit(f"error: {e}", code=1) from None
    if env:
        for k, v in credentials.as_env(creds).items():
            print(f"export {k}={v}")
        return
    for line in credentials.describe(creds, show):
        print(line)
    if creds.secure:
        print(f"stored in {credentials.secrets_path()} (mode 0600)")


@task
def audit(c):
    """Report what the running lab lets in without credentials and its weak settings (harmless probes);
    exit 1 in the secure profile when anything is found or cannot be checked, 0 in the article profile."""
    from lab import audit as lab_audit
    from labcore import exitcodes, guard

    try:
        topo = topology.load()
        lab_state.require("provisioned", action="audit the lab")
        rep = lab_audit.run(topo)
    except (topology.TopologyError, lab_state.LabStateError, credentials.CredentialsError, guard.GuardError) as e:
        raise Exit(f"error: {e}", code=exitcodes.REFUSED) from None
    for line in lab_audit.render(rep):
        print(line)
    if rep.profile == "article":
        if rep.findings:
            print("these are the article's choices (profile article); `options.profile: secure` closes them")
        return
    if rep.findings or rep.unobserved:
        what = f"{len(rep.findings)} finding(s)" + (f", {len(rep.unobserved)} not observed" if rep.unobserved else "")
        raise Exit(f"audit: the secure profile has {what}", code=exitcodes.FAILED)


TASKS = [secrets, audit]
