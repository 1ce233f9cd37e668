"""The VM nodes' disk: a Debian 12 guest made here from Debian packages only, as a Vagrant libvirt box.

One command builds it (``invoke image --vm``, or ``invoke up --provider libvirt``
when it is missing): mmdebstrap bootstraps a root tree with a kernel, systemd,
udev, sshd and the ``vagrant`` user holding Vagrant's insecure key, runs in it
the same install script the docker provider's preinstalled image runs (the
steps' package lists and Patroni from the wheelhouse, see
:mod:`lab.providers.preinstalled`), and adds what a VM needs: DHCP on its one
NIC by systemd-networkd, host keys made at first boot. ``mkfs.ext4 -d`` turns
the tree into a filesystem and ``qemu-img`` into qcow2: no loop device, no mount.

The guests never run apt (TCG makes that slow, and their network reaches only
the lab bridge): everything the steps install is already in the image.

The disk has no partition table and no bootloader. The guest boots the image's
own kernel and initramfs directly (libvirt ``<kernel>``/``<initrd>``), which
sit next to the box in the cache. The kernel is Debian's generic one: it has
the ``i6300esb`` driver for libvirt's watchdog device and ``softdog`` (the
cloud kernel has only softdog).

Cached under ``$LAB_CACHE/vm/<digest>/``: the digest hashes the package
lists, the install script, the VM set-up script, the key and the wheelhouse,
so a changed list is a new digest and a new build; an old one is never served.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lab.providers import image, preinstalled
from lab.providers.image import DEBIAN_KEYRING, MIRROR, ImageError, Report
from provision import wheelhouse
from provision.platforms import Platform

SUITE = "bookworm"
BOX_PREFIX = "patroni-lab/debian12"
DISK_GIB = 8
# What a VM needs beyond the provisioning steps' lists; linux-image-amd64 carries i6300esb.ko;
# libnss-myhostname resolves the node's own name (given on the kernel command line), so
# `hostname -f` answers it and Vagrant leaves the hostname alone.
VM_PACKAGES = ("linux-image-amd64", "initramfs-tools", "zstd", "systemd", "systemd-sysv", "udev",
               "dbus", "openssh-server", "sudo", "python3", "iproute2", "kmod", "procps",
               "ca-certificates", "less", "libnss-myhostname")
# The root filesystem is the whole disk (no partition), found without udev's help.
CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0"
# The initramfs needs only what mounts the root disk: a small one unpacks fast under TCG.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "ext4")

# Written before the packages: the kernel's postinst builds a small initramfs at once.
ESSENTIAL_HOOK = f"""set -eu
mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"
printf 'MODULES=list\\nCOMPRESS=zstd\\n' > "$1/etc/initramfs-tools/conf.d/patroni-lab.conf"
printf '%s\\n' {' '.join(INITRAMFS_MODULES)} > "$1/usr/share/initramfs-tools/modules.d/patroni-lab"
"""

# Runs inside the guest tree after the steps' packages are in.
VM_SETUP = """set -eu
echo debian > /etc/hostname
printf '127.0.0.1 localhost\\n' > /etc/hosts
# No DNS on the lab network: nothing in the guest resolves names outside it.
: > /etc/resolv.conf
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\\n' > /etc/fstab
# One NIC, addressed by the lab network's DHCP reservation (MAC -> the node's topology address).
mkdir -p /etc/systemd/network
cat > /etc/systemd/network/10-lab.network <<'EOF'
[Match]
Type=ether

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
ClientIdentifier=mac
UseDNS=no
EOF
useradd --create-home --shell /bin/bash vagrant
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/vagrant
chmod 440 /etc/sudoers.d/vagrant
install -d -m 700 -o vagrant -g vagrant /home/vagrant/.ssh
install -m 600 -o vagrant -g vagrant /tmp/vagrant.pub /home/vagrant/.ssh/authorized_keys
rm -f /tmp/vagrant.pub /etc/ssh/ssh_host_*
echo 'UseDNS no' > /etc/ssh/sshd_config.d/lab.conf
install -m 644 /tmp/ssh-hostkeys.service /etc/systemd/system/ssh-hostkeys.service
rm -f /tmp/ssh-hostkeys.service
systemctl enable -q systemd-networkd.service ssh.service ssh-hostkeys.service
# Housekeeping a throw-away node never needs, and which costs minutes of emulated CPU at boot
# under TCG (e2scrub_reap alone took 4 min there); nothing of the lab's stack depends on them.
systemctl mask -q e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer \
    dpkg-db-backup.timer fstrim.timer man-db.timer systemd-tmpfiles-clean.timer
# Each VM makes its own machine id at first boot (DHCP client ids and journals differ).
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
"""


@dataclass(frozen=True)
class VmImage:
    """A built image: the box Vagrant knows by ``box``, and the kernel and initramfs it boots."""
    digest: str
    box: str            # Vagrant box name
    box_file: Path      # the .box archive (metadata.json + box.img)
    kernel: Path
    initrd: Path
    cmdline: str = CMDLINE


def cache_root() -> Path:
    return wheelhouse.cache_dir() / "vm"


def build_script(plat: Platform) -> str:
    """The steps' install script (shared with the docker preinstalled image), then the VM set-up."""
    return preinstalled.build_script(plat) + VM_SETUP


def digest(plat: Platform, pubkey: str, wheelhouse_digest: str) -> str:
    """Pure: the fingerprint of the VM image (its cache folder and box name end with it)."""
    h = hashlib.sha256()
    for part in (SUITE, " ".join(VM_PACKAGES), ESSENTIAL_HOOK, build_script(plat), CMDLINE,
                 str(DISK_GIB), pubkey, (image.DOCKER_DIR / "ssh-hostkeys.service").read_text(),
                 wheelhouse_digest):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:12]


def box_name(dig: str) -> str:
    return f"{BOX_PREFIX}-{dig}"


def metadata(disk_gib: int = DISK_GIB) -> dict:
    """vagrant-libvirt's box format v1: the disk is box.img, qcow2."""
    return {"provider": "libvirt", "format": "qcow2", "virtual_size": disk_gib}


def mmdebstrap_command(root: Path, tmp: Path) -> list[str]:
    """mmdebstrap into ``root``; the hooks read their scripts and payload from ``tmp``."""
    cmd = ["mmdebstrap", "--variant=minbase", "--aptopt=APT::Install-Recommends \"false\"",
           f"--include={','.join(VM_PACKAGES)}",
           f"--essential-hook=sh {tmp}/essential.sh \"$1\"",
           f"--customize-hook=cp {tmp}/wheelhouse.tar \"$1\"{wheelhouse.REMOTE_TARBALL}",
           f"--customize-hook=cp {tmp}/vagrant.pub {tmp}/ssh-hostkeys.service {tmp}/build.sh \"$1/tmp/\"",
           "--customize-hook=chroot \"$1\" bash /tmp/build.sh",
           "--customize-hook=rm -f \"$1/tmp/build.sh\"",
           SUITE, str(root), MIRROR]
    if Path(DEBIAN_KEYRING).exists():       # Ubuntu hosts do not trust Debian's keys by default
        cmd.insert(1, f"--keyring={DEBIAN_KEYRING}")
    return cmd


def _run(what: str, cmd: list[str], **kw) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        tail = "; ".join((r.stderr or r.stdout).strip().splitlines()[-3:]) or "no output"
        raise ImageError(f"{what} failed: {tail}")


def _need(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise ImageError(f"building the VM image needs {', '.join(missing)} "
                         "(apt-get install --no-install-recommends mmdebstrap e2fsprogs qemu-utils)")


def cached(dig: str) -> VmImage:
    d = cache_root() / dig
    return VmImage(digest=dig, box=box_name(dig), box_file=d / "patroni-lab.box",
                   kernel=d / "vmlinuz", initrd=d / "initrd.img")


def is_built(img: VmImage) -> bool:
    return all(p.is_file() for p in (img.box_file, img.kernel, img.initrd))


def current(plat: Platform) -> VmImage:
    """The image the current recipe names (built or not); builds the wheelhouse if missing."""
    pub = image.public_key(image.insecure_key())
    tarball = wheelhouse.ensure(plat.python, plat.patroni_spec)
    return cached(digest(plat, pub, preinstalled.file_digest(tarball)))


def build(plat: Platform, report: Report) -> VmImage:
    """Build the VM image for ``plat`` unless it is cached; return it. Nothing half-made is left."""
    img = current(plat)
    if is_built(img):
        return img
    _need("mmdebstrap", "mkfs.ext4", "qemu-img")
    out = img.box_file.parent
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    report(f"building the VM image {img.digest}: Debian 12, {len(plat.all_packages())} packages of the "
           f"steps' lists and Patroni preinstalled (mmdebstrap from {MIRROR}, a few minutes)")
    with tempfile.TemporaryDirectory(prefix="lab-vm-", dir=out.parent) as tmpdir:
        tmp = Path(tmpdir)
        root = tmp / "root"
        (tmp / "essential.sh").write_text(ESSENTIAL_HOOK)
        (tmp / "build.sh").write_text(build_script(plat))
        (tmp / "vagrant.pub").write_text(image.public_key(image.insecure_key()))
        shutil.copy(image.DOCKER_DIR / "ssh-hostkeys.service", tmp / "ssh-hostkeys.service")
        shutil.copy(wheelhouse.ensure(plat.python, plat.patroni_spec), tmp / "wheelhouse.tar")
        _run("mmdebstrap (VM image)", mmdebstrap_command(root, tmp))
        report(f"root tree made in {time.monotonic() - t0:.0f} s; making the disk")
        boot = root / "boot"
        kernels = sorted(boot.glob("vmlinuz-*"))
        initrds = sorted(boot.glob("initrd.img-*"))
        if not kernels or not initrds:
            raise ImageError(f"the VM image has no kernel or initramfs in /boot ({[p.name for p in boot.iterdir()]})")
        shutil.copy(kernels[-1], tmp / "vmlinuz")
        shutil.copy(initrds[-1], tmp / "initrd.img")
        raw = tmp / "disk.raw"
        with raw.open("wb") as f:
            f.truncate(DISK_GIB * 1024 ** 3)
        _run("mkfs.ext4 -d (VM image)", ["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(raw)])
        shutil.rmtree(root)
        _run("qemu-img convert (VM image)", ["qemu-img", "convert", "-O", "qcow2", str(raw), str(tmp / "box.img")])
        raw.unlink()
        (tmp / "metadata.json").write_text(json.dumps(metadata()) + "\n")
        partial = tmp / "patroni-lab.box"
        with tarfile.open(partial, "w") as tar:      # uncompressed: qcow2 is already sparse
            for name in ("metadata.json", "box.img"):
                tar.add(tmp / name, arcname=name)
        for f in ("vmlinuz", "initrd.img"):
            shutil.move(tmp / f, out / f)
        shutil.move(partial, img.box_file)           # last: its presence means "built"
    report(f"VM image {img.digest} built in {time.monotonic() - t0:.0f} s "
           f"({img.box_file.stat().st_size / 2**20:.0f} MiB box)")
    prune(img, report)
    return img


def prune(keep: VmImage, report: Report) -> None:
    """Remove older VM images from the cache (their boxes are removed from Vagrant by the provider)."""
    for d in cache_root().iterdir():
        if d.is_dir() and d.name != keep.digest and not d.name.startswith("lab-vm-"):
            shutil.rmtree(d, ignore_errors=True)
            report(f"removed the outdated VM image {d.name}")


def vagrant_env() -> dict[str, str]:
    return dict(os.environ, VAGRANT_CHECKPOINT_DISABLE="1", VAGRANT_NO_COLOR="1")
