"""The docker nodes' warm start: the node image with the lab's packages already installed.

Built once from the same lists the provisioning steps install (the platform
table, :meth:`provision.platforms.Platform.all_packages`) and from the same
Patroni wheelhouse, so the steps find every package in place, report
``ok: ... installed`` and do only the configuration. The image's tag is a hash
of everything it is made from (the plain node image's recipe, the build script
holding the package list, the wheelhouse's content): a changed list is a new
tag, which does not exist yet and is built, so a stale image is never served.

The build is one package transaction: a container from the plain node image
runs the platform's own install command (with a host directory as apt's
cache), then ``docker commit``. Package services stay disabled in the image:
each step enables and starts what the article starts on its nodes, and no
node runs an etcd or haproxy the article did not put there.
``invoke up --from-scratch`` skips this image: every step installs, as on a
fresh machine.
"""
from __future__ import annotations

import base64
import hashlib
import posixpath
import subprocess
from pathlib import Path

from lab.providers import image
from lab.providers.image import ImageError, Report
from provision import wheelhouse
from provision.platforms import Platform

LABEL = "patroni-lab.preinstalled"


def tag_for(digest: str, node_image: str | None = None) -> str:
    """``patroni-lab/node:bookworm`` -> ``patroni-lab/node:bookworm-pre-<digest>``."""
    repo, _, tag = (node_image or image.NODE_IMAGE).rpartition(":")
    return f"{repo}:{tag}-pre-{digest}"


def build_script(plat: Platform) -> str:
    """What runs in the build container: the steps' own install commands, in their order."""
    from provision.steps import patroni, postgres

    enabled = "find /etc/systemd/system -path '*.wants/*' -type l -printf '%f\\n' | sort -u"
    lines = ["set -eu", f"{enabled} > /tmp/units.before"]
    if plat.createcluster_conf:
        payload = base64.b64encode(postgres.CREATECLUSTER.encode()).decode()
        lines += [f"mkdir -p {posixpath.dirname(plat.createcluster_conf)}",
                  f"echo {payload} | base64 -d > {plat.createcluster_conf}"]
    lines.append(plat.install.replace("{pkgs}", " ".join(plat.all_packages())))
    if "locales" in plat.all_packages():
        lines.append(postgres.LOCALEDEF)
    if plat.uses_wheelhouse:
        lines += patroni.install_commands(plat)
    # Units the packages enabled: off, so that only the steps start services, where the article does.
    lines += [f"{enabled} | comm -13 /tmp/units.before - | xargs -r systemctl disable -q",
              "rm -rf /var/lib/apt/lists/* /tmp/units.before"]
    return "\n".join(lines) + "\n"


def digest(plat: Platform, node_recipe: str, wheelhouse_digest: str) -> str:
    """Pure: the fingerprint of a preinstalled image (what its tag ends with)."""
    h = hashlib.sha256()
    for part in (node_recipe, build_script(plat), wheelhouse_digest):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:12]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def _fail(what: str, run: subprocess.CompletedProcess) -> ImageError:
    tail = "; ".join((run.stderr or run.stdout).strip().splitlines()[-3:]) or "no output"
    return ImageError(f"{what} failed: {tail}")


def ensure(plat: Platform, apt_cache: Path, report: Report, suite: str = image.DEFAULT_SUITE) -> str:
    """The preinstalled image for ``plat`` on the node image of Debian ``suite`` (built now if its tag is
    missing); returns its tag."""
    node = image.ensure_node_image(report, suite)
    tarball = wheelhouse.ensure(plat.python, plat.patroni_spec) if plat.uses_wheelhouse else None
    want = tag_for(digest(plat, image.label(node, image.RECIPE_LABEL) or "",
                          file_digest(tarball) if tarball else ""), node)
    if image.image_exists(want):
        return want
    report(f"building {want}: {len(plat.all_packages())} packages of the steps' lists"
           + (" and Patroni from the wheelhouse" if tarball else "") + ", one transaction")
    apt_cache.mkdir(parents=True, exist_ok=True)
    name = "patroni-lab-preinstall-" + want.rsplit("-", 1)[1]
    _docker("rm", "-f", name)
    try:
        made = _docker("create", "--name", name, "-v", f"{apt_cache}:/var/cache/apt/archives",
                       node, "bash", "-c", build_script(plat))
        if made.returncode != 0:
            raise _fail("docker create (preinstalled image)", made)
        if tarball:
            cp = _docker("cp", str(tarball), f"{name}:{wheelhouse.REMOTE_TARBALL}")
            if cp.returncode != 0:
                raise _fail("docker cp of the wheelhouse", cp)
        run = _docker("start", "-a", name)
        if run.returncode != 0:
            raise _fail(f"installing the packages for {want}", run)
        # The container ran the build script: give the image back its init (STOPSIGNAL is kept).
        commit = _docker("commit", "--change", 'CMD ["/sbin/init"]', "--change", f"LABEL {LABEL}={want.rsplit('-', 1)[1]}", name, want)
        if commit.returncode != 0:
            raise _fail(f"docker commit {want}", commit)
    finally:
        _docker("rm", "-f", name)
    prune(want, report)
    return want


def prune(keep: str, report: Report) -> None:
    """Remove older preinstalled images of the same node image (those no container uses): one per
    Debian release stays, so labs of other PostgreSQL versions keep theirs."""
    base = keep.rpartition("-pre-")[0]
    listed = _docker("images", "--filter", f"label={LABEL}", "--format", "{{.Repository}}:{{.Tag}}")
    for ref in listed.stdout.split():
        if ref != keep and ref.rpartition("-pre-")[0] == base and _docker("rmi", ref).returncode == 0:
            report(f"removed the outdated {ref}")
