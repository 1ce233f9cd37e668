"""Security commands: `invoke secrets` (who logs in where) and `invoke audit` (what is open)."""
from __future__ import annotations

from invoke import Exit, task

from lab import credentials, topology
from lab import state as lab_state


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


TASKS = [secrets]
