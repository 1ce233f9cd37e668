"""The docker nodes' image: built locally from ``docker/Dockerfile``.

One image per Debian release (``bookworm`` by default; the topology's
options.postgres_version picks another, labcore.versions). The base is chosen
in this order, because no registry may be reachable: a local ``debian:<suite>``
image, else a rootfs bootstrapped here with mmdebstrap (or debootstrap) and
``docker import``-ed, else ``docker pull``.
Images are shared by every lab instance on the host and kept by ``invoke down``
(they are a cache); a changed Dockerfile or key is noticed by a recipe label.
"""
from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from labcore import versions
from labcore.topology import ROOT

DOCKER_DIR = ROOT / "docker"
DEFAULT_SUITE = versions.POSTGRES[versions.DEFAULT_POSTGRES].suite
NODE_IMAGE = os.environ.get("LAB_NODE_IMAGE", f"patroni-lab/node:{DEFAULT_SUITE}")
RECIPE_LABEL = "patroni-lab.recipe"
PACKAGES = "systemd,systemd-sysv,dbus,openssh-server,iproute2,sudo,python3,ca-certificates"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
MIRROR = os.environ.get("LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")

# Where Debian/Ubuntu packages and HashiCorp's installer put Vagrant's key pair.
KEY_GLOBS = (
    "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant",
    "/usr/lib/ruby/vendor_ruby/vagrant/keys/vagrant",
    "/opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant",
    "/opt/vagrant/embedded/gems/*/gems/vagrant-*/keys/vagrant",
)

Report = Callable[[str], None]


class ImageError(RuntimeError):
    """The node image cannot be built; the message says what to install."""


def insecure_key() -> Path:
    """Vagrant's well-known private key, as shipped with Vagrant itself."""
    override = os.environ.get("LAB_VAGRANT_KEY")
    candidates = [override] if override else [p for g in KEY_GLOBS for p in sorted(glob.glob(g))]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise ImageError("Vagrant's insecure key (keys/vagrant in the vagrant gem) was not found; "
                     "install Vagrant or set LAB_VAGRANT_KEY")


def public_key(private: Path) -> str:
    """The matching public key: shipped next to it, else derived (ssh-keygen wants mode 600)."""
    shipped = private.with_name(private.name + ".pub")
    if shipped.is_file():
        return shipped.read_text().strip() + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "key"
        shutil.copy(private, copy)
        copy.chmod(0o600)
        out = subprocess.run(["ssh-keygen", "-y", "-f", str(copy)], capture_output=True, text=True)
    if out.returncode != 0:
        raise ImageError(f"cannot derive the public key of {private}: {out.stderr.strip()}")
    return out.stdout.strip() + " vagrant insecure public key\n"


def _docker(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, **kw)


def image_exists(ref: str) -> bool:
    return _docker("image", "inspect", ref).returncode == 0


def label(ref: str, key: str) -> str | None:
    out = _docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{key}"}}}}', ref)
    return out.stdout.strip() if out.returncode == 0 else None


def recipe(pubkey: str) -> str:
    """A fingerprint of everything the node image is made from."""
    h = hashlib.sha256(pubkey.encode())
    for f in sorted(DOCKER_DIR.iterdir()):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def node_image(suite: str = DEFAULT_SUITE) -> str:
    """The node image of a Debian release (LAB_NODE_IMAGE names the default release's)."""
    return NODE_IMAGE if suite == DEFAULT_SUITE else f"patroni-lab/node:{suite}"


def bootstrap_image(suite: str) -> str:
    return f"patroni-lab/base:{suite}"


def registry_base(suite: str) -> str:
    return f"debian:{suite}"


def _debian_name(suite: str) -> str:
    major = next((r.platform.removeprefix("debian") for r in versions.POSTGRES.values() if r.suite == suite), None)
    return f"Debian {major}" if major else f"Debian {suite}"


def bootstrap_base(report: Report, suite: str = DEFAULT_SUITE) -> str:
    """Make a Debian base image without a registry (mmdebstrap, else debootstrap)."""
    tool = shutil.which("mmdebstrap") or shutil.which("debootstrap")
    if not tool:
        raise FileNotFoundError
    with tempfile.TemporaryDirectory(prefix="lab-rootfs-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        if tool.endswith("mmdebstrap"):
            report(f"bootstrapping a {_debian_name(suite)} rootfs with mmdebstrap from {MIRROR} (about a minute)")
            cmd = ["mmdebstrap", "--variant=minbase", f"--include={PACKAGES}", suite,
                   str(tarball), MIRROR]
            if Path(DEBIAN_KEYRING).exists():   # Ubuntu hosts do not trust Debian's keys by default
                cmd.insert(1, f"--keyring={DEBIAN_KEYRING}")
            run = subprocess.run(cmd, capture_output=True, text=True)
        else:
            report(f"bootstrapping a {_debian_name(suite)} rootfs with debootstrap from {MIRROR} (a few minutes)")
            root = Path(tmp) / "root"
            keyring = [f"--keyring={DEBIAN_KEYRING}"] if Path(DEBIAN_KEYRING).exists() else []
            run = subprocess.run(["debootstrap", *keyring, "--variant=minbase", f"--include={PACKAGES}",
                                  suite, str(root), MIRROR], capture_output=True, text=True)
            if run.returncode == 0:
                run = subprocess.run(["tar", "-C", str(root), "-cf", str(tarball), "."],
                                     capture_output=True, text=True)
        if run.returncode != 0:
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ImageError(f"{Path(tool).name} failed: {tail[0]}")
        imp = _docker("import", str(tarball), bootstrap_image(suite))
        if imp.returncode != 0:
            raise ImageError(f"docker import failed: {imp.stderr.strip()}")
    return bootstrap_image(suite)


def base_image(report: Report, suite: str = DEFAULT_SUITE) -> str:
    """The Debian base to build on, by the cheapest way that works here."""
    registry = registry_base(suite)
    for ref in (registry, bootstrap_image(suite)):
        if image_exists(ref):
            return ref
    try:
        return bootstrap_base(report, suite)
    except FileNotFoundError:
        pass
    report(f"no mmdebstrap/debootstrap: trying `docker pull {registry}`")
    pull = _docker("pull", registry)
    if pull.returncode == 0:
        return registry
    why = (pull.stderr.strip().splitlines() or ["no answer"])[-1]
    raise ImageError(f"no {_debian_name(suite)} base image: {registry} is not local, no registry serves it "
                     f"({why}), and neither mmdebstrap nor debootstrap is installed "
                     "(apt-get install mmdebstrap)")


def ensure_node_image(report: Report, suite: str = DEFAULT_SUITE) -> str:
    """Build the node image of a Debian release unless an up-to-date one exists; return its tag."""
    pub = public_key(insecure_key())
    want = recipe(pub)
    ref = node_image(suite)
    if image_exists(ref) and label(ref, RECIPE_LABEL) == want:
        return ref
    base = base_image(report, suite)
    report(f"building {ref} from {base}")
    with tempfile.TemporaryDirectory(prefix="lab-image-") as ctx:
        for f in DOCKER_DIR.iterdir():
            if f.is_file():
                shutil.copy(f, ctx)
        Path(ctx, "vagrant.pub").write_text(pub)
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        build = subprocess.run(
            ["docker", "build", "--build-arg", f"BASE={base}", "--label", f"{RECIPE_LABEL}={want}",
             "--label", "patroni-lab.image=node", "-t", ref, ctx],
            capture_output=True, text=True, env=env)
    if build.returncode != 0:
        tail = "; ".join(build.stderr.strip().splitlines()[-3:]) or build.stdout.strip()[-300:]
        raise ImageError(f"docker build of {ref} failed: {tail}")
    return ref
