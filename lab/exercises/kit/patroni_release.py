"""Another Patroni release on a member, in place: its wheels built on the control host (the same
wheelhouse provisioning uses, provision/wheelhouse.py), copied to the node, installed into the venv
provisioning made, then Patroni restarted. The upgrade drill rolls it member by member."""
from __future__ import annotations

from labcore import state as lab_state
from labcore.topology import Topology
from labcore.versions import PatroniRelease
from provision import platforms, wheelhouse
from provision.context import WHEELHOUSE_REMOTE
from provision.platforms import Platform

from lab.exercises.kit.patroni_config import PATRONI_UNIT
from lab.exercises.kit.shell import Output

UPLOAD = "/tmp/patroni-lab-release.tar"


def platform(topo: Topology) -> Platform:
    """The lab's machines as provisioned (their Python and pip), with the topology's Patroni."""
    return platforms.for_lab(lab_state.load().platform, topo)


def folder(release: PatroniRelease, plat: Platform) -> str:
    """Where a release's wheels wait on the nodes; the topology's own stay where provisioning unpacked them."""
    return WHEELHOUSE_REMOTE if release.version == plat.patroni_version else f"{WHEELHOUSE_REMOTE}-{release.version}"


def spec(release: PatroniRelease, plat: Platform) -> str:
    return platforms.with_patroni(plat, release).patroni_spec


def stage(shell, node: str, release: PatroniRelease, plat: Platform) -> Output:
    """The release's wheels on ``node`` (built here first when the cache lacks them)."""
    tarball = wheelhouse.ensure(plat.python, spec(release, plat))
    sent = shell.put(node, str(tarball), UPLOAD)
    if not sent.ok:
        return sent
    where = folder(release, plat)
    return shell.run(node, f"sudo rm -rf {where} && sudo mkdir -p {where} && sudo tar -xf {UPLOAD} -C {where} "
                           f"&& rm -f {UPLOAD}", timeout=120)


def install(release: PatroniRelease, plat: Platform) -> str:
    """The command that puts ``release`` in the venv and restarts Patroni with it (PostgreSQL restarts too:
    Patroni stops it on the way down, as on any restart of a replica)."""
    return (f"sudo {plat.patroni_pip} install -q --no-index --find-links {folder(release, plat)} "
            f"'{spec(release, plat)}' psycopg2-binary && sudo systemctl restart {PATRONI_UNIT}")
