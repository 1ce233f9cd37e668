"""What the lab's libvirt path creates, as data: the pool, the network and one domain per node.

Two programs create it. ``invoke up --provider libvirt`` does it through the Vagrantfile's libvirt
block (and lab.providers.libvirt for the network and the pool); the Pulumi program
(lab.providers.pulumi_program) declares it for the day a user has the Pulumi CLI. Both follow
``layout``: the VM tier reads what libvirt really holds (``live``) and compares it with ``layout``,
and a unit test compares the Pulumi program's resources with it, so the two paths make the same lab.

What is compared is what a user sees of the lab: names, sizes, the boot (kernel, initramfs and
command line of the lab's image), the watchdog (article §5.1), the NIC's network and MAC, the
disks as copy-on-write layers over the image, the serial console's file, and the network's
bridge, address, isolation, DNS and DHCP reservations. Not compared: what libvirt fills in by
itself (UUIDs, PCI addresses, the bridge's own MAC), and the image volume's name, which
vagrant-libvirt makes up from the box's name and version.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from labcore.topology import Topology
from labcore.vm import domain_name, domain_prefix, mac_for

POOL_ROOT = Path("/var/lib/libvirt/images")
WATCHDOG = ("i6300esb", "reset")     # the emulated device, and what it does when it fires
TCG_CPU = "qemu64"                   # TCG emulates a plain x86-64; "host" means nothing without KVM
KVM_CPU = "host-passthrough"
IMAGE = "the lab image"              # what every domain's disk is a layer over


@dataclass(frozen=True)
class DomainLayout:
    name: str
    node: str
    domain_type: str            # kvm | qemu
    vcpu: int
    memory_mib: int
    cpu: str                    # host-passthrough | qemu64
    kernel: str | None          # volume names in the lab's pool (None: the image's own bootloader)
    initrd: str | None
    cmdline: str | None
    disk: str                   # the domain's own volume in the pool
    backing: str                # what the disk is a layer over (IMAGE)
    network: str
    mac: str
    watchdog: tuple[str, str]
    serial_file: str | None     # where the serial console is written (None: no file)


@dataclass(frozen=True)
class NetworkLayout:
    name: str
    bridge: str
    address: str                # the host's side, the subnet's first address
    netmask: str
    forward: str | None         # None: isolated, nothing beyond the bridge
    dns: bool
    dhcp_hosts: tuple[tuple[str, str, str], ...]   # (MAC, name, address), one per node, no range


@dataclass(frozen=True)
class Layout:
    pool: str
    pool_path: str
    network: NetworkLayout
    domains: tuple[DomainLayout, ...]


def pool_name(topo: Topology) -> str:
    return topo.name


def pool_dir(topo: Topology) -> Path:
    return POOL_ROOT / topo.name


def kernel_volumes(digest: str) -> tuple[str, str]:
    """The names the image's kernel and initramfs have in the pool (one pair per image)."""
    return f"vmlinuz-{digest}", f"initrd.img-{digest}"


def disk_volume(topo: Topology, node: str) -> str:
    return f"{domain_name(topo, node)}.img"


def network_layout(topo: Topology) -> NetworkLayout:
    return NetworkLayout(name=topo.name, bridge=topo.bridge, address=topo.gateway, netmask=str(topo.subnet.netmask),
                         forward=None, dns=False,
                         dhcp_hosts=tuple((mac_for(n.address), n.name, n.address) for n in topo.nodes))


def layout(topo: Topology, *, domain_type: str, cpus: int, memory_mib: int, digest: str | None,
           cmdline: str | None, console_dir: Path | None) -> Layout:
    """The lab as the libvirt path makes it. ``digest``: the lab's own image (its kernel boots
    directly, with ``cmdline`` and the node's name); None: a box with its own bootloader."""
    kernel, initrd = kernel_volumes(digest) if digest else (None, None)
    domains = tuple(DomainLayout(
        name=domain_name(topo, n.name), node=n.name, domain_type=domain_type, vcpu=cpus, memory_mib=memory_mib,
        cpu=TCG_CPU if domain_type == "qemu" else KVM_CPU, kernel=kernel, initrd=initrd,
        cmdline=f"{cmdline} systemd.hostname={n.name}" if digest and cmdline else None,
        disk=disk_volume(topo, n.name), backing=IMAGE, network=topo.name, mac=mac_for(n.address),
        watchdog=WATCHDOG, serial_file=str(console_dir / f"{n.name}.log") if console_dir else None)
        for n in topo.nodes)
    return Layout(pool=pool_name(topo), pool_path=str(pool_dir(topo)), network=network_layout(topo), domains=domains)


# --- what libvirt holds -------------------------------------------------------------------------

def parse_network(xml: str) -> NetworkLayout:
    root = ET.fromstring(xml)
    ip = root.find("ip")
    forward = root.find("forward")
    dns = root.find("dns")
    hosts = tuple((h.get("mac"), h.get("name"), h.get("ip")) for h in root.findall("ip/dhcp/host"))
    return NetworkLayout(name=root.findtext("name"), bridge=root.find("bridge").get("name"),
                         address=ip.get("address"), netmask=ip.get("netmask"),
                         forward=None if forward is None else forward.get("mode", "nat"),
                         dns=dns is None or dns.get("enable") != "no", dhcp_hosts=hosts)


def parse_domain(xml: str, topo: Topology, pool_path: str) -> DomainLayout:
    """One domain's XML (``virsh dumpxml``) as the layout sees it; paths in the pool become volume names."""
    root = ET.fromstring(xml)
    name = root.findtext("name")

    def in_pool(path: str | None) -> str | None:
        if not path:
            return None
        p = Path(path)
        return p.name if str(p.parent) == pool_path else str(p)

    cpu = root.find("cpu")
    mode = cpu.get("mode") if cpu is not None else None
    disk = root.find("devices/disk[@device='disk']")
    backing = disk.find("backingStore/source") if disk is not None else None
    nic = root.find("devices/interface")
    watchdog = root.find("devices/watchdog")
    serial = root.find("devices/serial[@type='file']/source")
    memory_kib = int(root.findtext("memory"))
    return DomainLayout(
        name=name, node=name.removeprefix(domain_prefix(topo)), domain_type=root.get("type"),
        vcpu=int(root.findtext("vcpu")), memory_mib=memory_kib // 1024,
        cpu=cpu.findtext("model") if mode == "custom" else mode,
        kernel=in_pool(root.findtext("os/kernel")), initrd=in_pool(root.findtext("os/initrd")),
        cmdline=root.findtext("os/cmdline"),
        disk=in_pool(disk.find("source").get("file")) if disk is not None else "",
        backing=IMAGE if backing is not None and in_pool(backing.get("file")) != backing.get("file") else "none",
        network=nic.find("source").get("network") if nic is not None else "",
        mac=nic.find("mac").get("address") if nic is not None else "",
        watchdog=(watchdog.get("model"), watchdog.get("action")) if watchdog is not None else ("", ""),
        serial_file=serial.get("path") if serial is not None else None)


def live(topo: Topology, virsh) -> Layout:
    """What libvirt holds of the lab now; ``virsh(*args)`` returns a CompletedProcess (lab.providers.libvirt)."""
    pool_xml = ET.fromstring(virsh("pool-dumpxml", pool_name(topo)).stdout)
    path = pool_xml.findtext("target/path")
    names = [d.strip() for d in virsh("list", "--all", "--name").stdout.splitlines()
             if d.strip().startswith(domain_prefix(topo))]
    domains = tuple(sorted((parse_domain(virsh("dumpxml", d).stdout, topo, path) for d in names),
                           key=lambda d: topo.names.index(d.node) if d.node in topo.names else len(topo.names)))
    return Layout(pool=pool_xml.findtext("name"), pool_path=path,
                  network=parse_network(virsh("net-dumpxml", topo.name).stdout), domains=domains)


def differences(expected: Layout, seen: Layout) -> list[str]:
    """One line per field that differs ("patroni-lab_node1 cpu: qemu64 != host-passthrough")."""
    out = []
    for field in ("pool", "pool_path"):
        if getattr(expected, field) != getattr(seen, field):
            out.append(f"{field}: {getattr(expected, field)} != {getattr(seen, field)}")
    for field, want in vars(expected.network).items():
        got = getattr(seen.network, field)
        if want != got:
            out.append(f"network {field}: {want} != {got}")
    want_names, got_names = [d.name for d in expected.domains], [d.name for d in seen.domains]
    if want_names != got_names:
        out.append(f"domains: {want_names} != {got_names}")
    for want, got in zip(expected.domains, seen.domains):
        for field, value in vars(want).items():
            if value != getattr(got, field):
                out.append(f"{want.name} {field}: {value} != {getattr(got, field)}")
    return out
