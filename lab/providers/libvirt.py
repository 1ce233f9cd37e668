"""What the lab itself creates in libvirt around Vagrant's domains: its network and its storage pool.

The network is the lab's subnet on the topology's bridge, isolated (no
``<forward>``: the guests reach nothing beyond the bridge) and without DNS
(dnsmasq would otherwise forward the guests' queries to the host's resolvers).
Its DHCP serves only one reservation per node, a fixed MAC -> the node's
topology address, so every VM has its address at first boot and no other
subnet ever exists. vagrant-libvirt uses it as its management network (found
by its address and name, kept on destroy); the lab removes it in ``down``.

The pool is a directory of the lab's own: the box's base volume, the domains'
disks and the kernel the VMs boot live there, and ``down`` removes all of it.

The domain type comes from a probe: QEMU boots the image's kernel with KVM
(``-cpu host``, as the domains would) and must reach the kernel's first panic
(no root disk) within seconds. Where KVM is present but guests do not run
(nested virtualisation that aborts or hangs), the VMs use QEMU's TCG instead.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence
from xml.sax.saxutils import quoteattr

from labcore.topology import Topology
from labcore.vm import domain_name, domain_prefix, mac_for  # noqa: F401  (one formula; importers use mac_for here)
from lab.providers.libvirt_layout import POOL_ROOT, pool_dir, pool_name  # noqa: F401  (the one layout)

URI = "qemu:///system"
VIRSH = ("virsh", "-c", URI)
DOMAIN_TYPES = ("kvm", "qemu")
# Without a timeout multiplier a TCG lab misses the drills' and provisioning's bounds made for
# containers. Measured here (2 cores, four 1-vCPU guests): 3 covered boot, provisioning and the
# watchdog drills, but a replica's PostgreSQL took 121 s to start again against replica-pg-stop's
# 40 s x 3; 4 gives it 160 s.
TCG_SCALE = 4.0
PROBE_SECONDS = 30          # a KVM guest kernel panics in about a second; TCG needs ~3 s
PANIC = re.compile(r"Kernel panic|VFS: Unable to mount root")


def macs(topo: Topology) -> dict[str, str]:
    return {n.name: mac_for(n.address) for n in topo.nodes}


def network_xml(topo: Topology) -> str:
    """The lab network: isolated, no DNS, DHCP reservations only (no dynamic range)."""
    hosts = "".join(f"      <host mac={quoteattr(mac_for(n.address))} name={quoteattr(n.name)} "
                    f"ip={quoteattr(n.address)}/>\n" for n in topo.nodes)
    return (f"<network>\n  <name>{topo.name}</name>\n"
            f"  <bridge name={quoteattr(topo.bridge)} stp='on' delay='0'/>\n"
            f"  <dns enable='no'/>\n"
            f"  <ip address={quoteattr(topo.gateway)} netmask={quoteattr(str(topo.subnet.netmask))}>\n"
            f"    <dhcp>\n{hosts}    </dhcp>\n  </ip>\n</network>\n")


def pool_xml(topo: Topology) -> str:
    return (f"<pool type='dir'>\n  <name>{pool_name(topo)}</name>\n"
            f"  <target>\n    <path>{pool_dir(topo)}</path>\n  </target>\n</pool>\n")


def virsh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VIRSH, *args], capture_output=True, text=True)


def names(kind: str) -> list[str]:
    """Names of every domain (``list``), network (``net-list``) or pool (``pool-list``), active or not."""
    r = virsh(kind, "--all", "--name")
    return [line.strip() for line in r.stdout.splitlines() if line.strip()]


def volumes(pool: str) -> list[str]:
    """The volume names of ``pool`` (virsh 9's ``vol-list`` has no ``--name``: read its table)."""
    lines = virsh("vol-list", pool).stdout.splitlines()
    body = lines[next((i + 1 for i, l in enumerate(lines) if set(l.strip()) == {"-"}), len(lines)):]
    return [l.split()[0] for l in body if l.strip()]


def leftovers(topo: Topology) -> list[str]:
    """What of this lab libvirt still holds ("domain patroni-lab_node1", ...); empty after ``down``."""
    out = [f"domain {d}" for d in names("list") if d.startswith(domain_prefix(topo))]
    out += [f"network {n}" for n in names("net-list") if n == topo.name]
    out += [f"pool {p}" for p in names("pool-list") if p == pool_name(topo)]
    if pool_dir(topo).exists():
        out.append(f"directory {pool_dir(topo)}")
    return out


# --- the domain type -------------------------------------------------------------------

@dataclass(frozen=True)
class Probe:
    domain_type: str        # kvm | qemu
    why: str


Runner = Callable[[Sequence[str], float], tuple[int | None, str]]


def _run_qemu(cmd: Sequence[str], timeout: float) -> tuple[int | None, str]:
    """(exit code or None on timeout, output); the QEMU process never outlives the call."""
    try:
        r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b""
        return None, out.decode(errors="replace") if isinstance(out, bytes) else out


def probe_command(kernel: Path) -> list[str]:
    return ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults",
            "-display", "none", "-serial", "stdio", "-no-reboot", "-kernel", str(kernel),
            "-append", "console=ttyS0 panic=-1"]


def judge(rc: int | None, output: str, seconds: float) -> Probe:
    """Pure: the probe's verdict from QEMU's exit and the guest's serial output."""
    if PANIC.search(output):
        return Probe("kvm", "a KVM guest kernel runs here")
    if rc is None:
        return Probe("qemu", f"a KVM guest kernel printed no panic within {seconds:.0f} s (nested KVM "
                             "hangs here), so the VMs run under QEMU's TCG emulation")
    last = next((l.strip() for l in reversed(output.splitlines()) if l.strip()), "no output")
    return Probe("qemu", f"QEMU with KVM failed here ({last[:120]}), so the VMs run under QEMU's TCG emulation")


def probe(kernel: Path, runner: Runner = _run_qemu, seconds: float = PROBE_SECONDS) -> Probe:
    """kvm if a guest kernel boots under KVM on this host, else qemu (TCG), with the reason."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Probe("qemu", "no usable /dev/kvm here, so the VMs run under QEMU's TCG emulation")
    if not shutil.which("qemu-system-x86_64"):
        return Probe("qemu", "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    rc, out = runner(probe_command(kernel), seconds)
    return judge(rc, out, seconds)
