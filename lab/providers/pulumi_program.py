"""The Pulumi program: the lab's four machines as libvirt VMs, derived from the topology.

It declares what ``invoke up --provider libvirt`` makes through the Vagrantfile, as
lab.providers.libvirt_layout describes it (a unit test compares the two): the lab's own storage
pool; its network on the topology's bridge, isolated, without DNS, whose DHCP serves one
reservation per node; one copy-on-write volume per node over the image, named as
vagrant-libvirt names it; one domain per node named as Vagrant names it, with the i6300esb
watchdog of article §5.1 (through a domain XSLT: pulumi-libvirt 0.5.x has no argument for it).
With the lab's own Debian 12 image (``kernel`` set) the domains boot its kernel and initramfs
from the pool, as the Vagrant path does, and need no cloud-init; with a cloud image (CentOS 7,
the article's) each node also gets a cloud-init disk for its user, key and address.

Settings come from the stack config (namespace ``patroni-lab``), so each stack
can use its own image, memory, CPUs and libvirt URI; ``__main__.py`` only calls
:func:`main`. Everything is checked before a single resource is declared, so
wrong input fails with one line and nothing is created.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import yaml

from lab.providers import libvirt_layout as layout
from labcore.topology import Topology
from labcore.vm import domain_name, mac_for

PROJECT = "patroni-lab"                    # also the stack config namespace

# Cloud images per platform; CentOS 7 is the article's. Override with patroni-lab:image.
DEFAULT_IMAGES = {
    "el7": "https://cloud.centos.org/centos/7/images/CentOS-7-x86_64-GenericCloud-2211.qcow2",
    "debian12": "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
}
URI_SCHEMES = ("qemu", "qemu+ssh", "qemu+tcp", "qemu+tls", "qemu+unix")

# CentOS 7 is end-of-life: mirror.centos.org and its mirrorlist are gone, the
# last release lives on vault.centos.org. Written before any yum run.
EL7_VAULT = "http://vault.centos.org/7.9.2009"
EL7_REPOS = ("os", "updates", "extras")

# Adds the watchdog device to the domain XML libvirt would otherwise define; under TCG (domain type
# qemu) also the plain CPU model the Vagrant path gives such domains.
_XSLT = """<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output omit-xml-declaration="yes" indent="yes"/>
  <xsl:template match="node()|@*">
    <xsl:copy><xsl:apply-templates select="node()|@*"/></xsl:copy>
  </xsl:template>
  <xsl:template match="/domain/devices">
    <xsl:copy>
      <xsl:apply-templates select="node()|@*"/>
      <xsl:if test="not(watchdog)">
        <watchdog model="{model}" action="{action}"/>
      </xsl:if>
    </xsl:copy>
  </xsl:template>{cpu}
</xsl:stylesheet>
"""
_TCG_CPU = """
  <xsl:template match="/domain/cpu">
    <cpu mode="custom" match="exact"><model fallback="forbid">{model}</model></cpu>
  </xsl:template>"""


def domain_xslt(domain_type: str) -> str:
    model, action = layout.WATCHDOG
    cpu = _TCG_CPU.format(model=layout.TCG_CPU) if domain_type == "qemu" else ""
    return _XSLT.format(model=model, action=action, cpu=cpu)


WATCHDOG_XSLT = domain_xslt("kvm")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the rendered cloud-config reads like the file it writes."""


_Dumper.add_representer(str, lambda d, v: d.represent_scalar(
    "tag:yaml.org,2002:str", v, style="|" if "\n" in v else None))


def _yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000)


class ProgramError(ValueError):
    """A setting or topology the program cannot build from; the message is one line."""


@dataclass(frozen=True)
class Settings:
    """The stack's settings, validated."""
    platform: str = "el7"
    image: str = DEFAULT_IMAGES["el7"]
    memory: int = 1024               # MiB per node (the Vagrant path's default, lab.memory)
    cpus: int = 1
    disk_gib: int = 20
    uri: str = "qemu:///system"
    ssh_user: str = "lab"
    ssh_public_key: str = ""
    domain_type: str = "kvm"         # qemu: TCG, where KVM guests do not run (the libvirt path's probe)
    # the lab's own image: the kernel and initramfs it boots directly (its digest names them in the pool)
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    digest: str = ""
    console_dir: str = ""            # the serial consoles' files, <dir>/<node>.log (empty: a pty)

    @property
    def own_image(self) -> bool:
        return bool(self.kernel)

    @property
    def is_remote(self) -> bool:
        """True when libvirt runs on another machine (qemu+ssh://host/system and the like)."""
        return bool(urlparse(self.uri).hostname)

    def validate(self) -> "Settings":
        if self.platform not in DEFAULT_IMAGES:
            raise ProgramError(f"{PROJECT}:platform: {self.platform!r} is not one of {', '.join(DEFAULT_IMAGES)}")
        if not self.image.strip():
            raise ProgramError(f"{PROJECT}:image is empty; set it to a cloud image URL or a local .qcow2 path "
                               f"(pulumi config set {PROJECT}:image ...)")
        if not re.match(r"https?://", self.image) and not Path(self.image).expanduser().is_file():
            raise ProgramError(f"{PROJECT}:image: {self.image} is neither an http(s) URL nor an existing file")
        if not 512 <= self.memory <= 262144:
            raise ProgramError(f"{PROJECT}:memory: {self.memory} must be MiB between 512 and 262144")
        if not 1 <= self.cpus <= 64:
            raise ProgramError(f"{PROJECT}:cpus: {self.cpus} must be between 1 and 64")
        if self.domain_type not in ("kvm", "qemu"):
            raise ProgramError(f"{PROJECT}:domainType: {self.domain_type!r} must be kvm or qemu")
        if self.own_image:
            for key, value in (("kernel", self.kernel), ("initrd", self.initrd)):
                if not Path(value).is_file():
                    raise ProgramError(f"{PROJECT}:{key}: {value} is not a file (the lab's VM image has it)")
            if not (self.digest and self.cmdline):
                raise ProgramError(f"{PROJECT}:kernel needs digest and cmdline too (the lab's VM image gives all three)")
        if not 10 <= self.disk_gib <= 2048:
            raise ProgramError(f"{PROJECT}:diskGib: {self.disk_gib} must be between 10 and 2048")
        scheme = urlparse(self.uri).scheme
        if scheme not in URI_SCHEMES:
            raise ProgramError(f"{PROJECT}:libvirtUri: {self.uri!r} must start with one of "
                               f"{', '.join(s + '://' for s in URI_SCHEMES)}")
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", self.ssh_user) or self.ssh_user == "root":
            raise ProgramError(f"{PROJECT}:sshUser: {self.ssh_user!r} must be a plain user name other than root")
        if not re.match(r"(ssh-(ed25519|rsa)|ecdsa-sha2-\S+) \S+", self.ssh_public_key):
            raise ProgramError(f"{PROJECT}:sshPublicKey: missing or not an OpenSSH public key "
                               f"(`invoke up --provider pulumi` creates one under LAB_DIR)")
        return self


def settings_from(get: Mapping[str, Any] | Any) -> Settings:
    """Build :class:`Settings` from a ``pulumi.Config`` (or any object with ``get``)."""
    def text(key: str, default: str) -> str:
        v = get.get(key)
        return default if v is None else str(v)

    def number(key: str, default: int) -> int:
        v = get.get(key)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            raise ProgramError(f"{PROJECT}:{key}: {v!r} is not a whole number") from None

    platform = text("platform", "el7")
    image = get.get("image")
    if image is None:
        if platform not in DEFAULT_IMAGES:
            raise ProgramError(f"{PROJECT}:platform: {platform!r} has no default image; "
                               f"set {PROJECT}:image (known platforms: {', '.join(DEFAULT_IMAGES)})")
        image = DEFAULT_IMAGES[platform]
    key = get.get("sshPublicKey")
    if key is None:
        key_file = get.get("sshPublicKeyFile") or default_public_key_file()
        try:
            key = Path(key_file).expanduser().read_text().strip()
        except OSError:
            raise ProgramError(f"{PROJECT}:sshPublicKey is not set and {key_file} cannot be read; "
                               f"run `invoke up --provider pulumi` (it creates the key) or set the key") from None
    return Settings(platform=platform, image=str(image), memory=number("memory", 1024),
                    cpus=number("cpus", 1), disk_gib=number("diskGib", 20),
                    uri=text("libvirtUri", "qemu:///system"),
                    ssh_user=text("sshUser", "lab"), ssh_public_key=str(key).strip(),
                    domain_type=text("domainType", "kvm"), kernel=text("kernel", ""), initrd=text("initrd", ""),
                    cmdline=text("cmdline", ""), digest=text("digest", ""),
                    console_dir=text("consoleDir", "")).validate()


def default_public_key_file() -> str:
    """The key the pulumi provider generates: ``$LAB_DIR/pulumi/id_ed25519.pub``."""
    from labcore.state import lab_dir
    return str(lab_dir(create=False) / "pulumi" / "id_ed25519.pub")


# --- what each node gets -------------------------------------------------------

def check_topology(topo: Topology) -> None:
    """Every node address and VIP must sit inside the network the program declares."""
    net = ipaddress.IPv4Network(topo.subnet)
    gateway = ipaddress.IPv4Address(topo.gateway)
    for n in topo.nodes:
        ip = ipaddress.IPv4Address(n.address)
        if ip not in net:
            raise ProgramError(f"{n.name}: address {ip} is outside the lab network {net}")
        if ip == gateway:
            raise ProgramError(f"{n.name}: address {ip} is the libvirt bridge's own address")
    for role, vip in topo.vips.items():
        if ipaddress.IPv4Address(vip) not in net:
            raise ProgramError(f"vips.{role}: {vip} is outside the lab network {net}")


def network_config(topo: Topology, address: str) -> str:
    """cloud-init network config v1 (CentOS 7's cloud-init reads it): static, matched by MAC."""
    doc = {"version": 1, "config": [
        {"type": "physical", "name": "eth0", "mac_address": mac_for(address),
         "subnets": [{"type": "static", "address": f"{address}/{topo.subnet.prefixlen}",
                      "gateway": topo.gateway, "dns_nameservers": [topo.gateway]}]},
    ]}
    return _yaml(doc)


def el7_repo_file() -> str:
    """CentOS-Base.repo pointing at the vault, the dead mirrorlist kept only as a comment."""
    out = []
    for repo in EL7_REPOS:
        section = "base" if repo == "os" else repo
        out += [f"[{section}]",
                f"name=CentOS-7 - {section} (vault)",
                f"#mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo={repo}",
                f"baseurl={EL7_VAULT}/{repo}/$basearch/",
                "gpgcheck=1",
                "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7",
                ""]
    return "\n".join(out)


def user_data(topo: Topology, node: str, settings: Settings) -> str:
    """cloud-init user data: hostname, the provisioning user with its key and sudo, EL7 repo fix."""
    doc: dict[str, Any] = {
        "hostname": node,
        "fqdn": node,
        "preserve_hostname": False,
        "users": [{"name": settings.ssh_user, "gecos": "patroni-lab provisioning",
                   "groups": "wheel" if settings.platform == "el7" else "sudo",
                   "shell": "/bin/bash", "lock_passwd": True,
                   "sudo": "ALL=(ALL) NOPASSWD:ALL",
                   "ssh_authorized_keys": [settings.ssh_public_key]}],
        "ssh_pwauth": False,
    }
    if settings.platform == "el7":
        # bootcmd runs before any module that could call yum; the sed also covers
        # repo files other than CentOS-Base (CR, fasttrack) that still name the mirrors.
        doc["write_files"] = [{"path": "/etc/yum.repos.d/CentOS-Base.repo", "permissions": "0644",
                               "content": el7_repo_file()}]
        doc["bootcmd"] = [
            "sed -i -e 's|^mirrorlist=|#mirrorlist=|' "
            "-e 's|^#\\?baseurl=http://mirror.centos.org/centos/$releasever|"
            f"baseurl={EL7_VAULT}|' /etc/yum.repos.d/CentOS-*.repo",
        ]
    return "#cloud-config\n" + _yaml(doc)


def meta_data(topo: Topology, node: str) -> str:
    return _yaml({"instance-id": f"{topo.name}-{node}", "local-hostname": node})


# --- the resources ---------------------------------------------------------------

def expected(topo: Topology, settings: Settings) -> layout.Layout:
    """The lab these settings make, as the libvirt path's layout says it."""
    return layout.layout(topo, domain_type=settings.domain_type, cpus=settings.cpus, memory_mib=settings.memory,
                         digest=settings.digest or None, cmdline=settings.cmdline or None,
                         console_dir=Path(settings.console_dir) if settings.console_dir else None)


def cmdlines(cmdline: str) -> list[dict[str, str]]:
    """A kernel command line as pulumi-libvirt takes it: one entry per word, ``_`` for a bare flag."""
    return [dict([w.split("=", 1)]) if "=" in w else {"_": w} for w in cmdline.split()]


def build(topo: Topology, settings: Settings) -> dict[str, Any]:
    """Declare every resource; return them by name (tests read this too)."""
    import pulumi
    import pulumi_libvirt as libvirt

    check_topology(topo)
    settings.validate()
    lab = expected(topo, settings)
    provider = libvirt.Provider("libvirt", uri=settings.uri)
    opts = pulumi.ResourceOptions(provider=provider)
    pool = libvirt.Pool(f"{topo.name}-pool", name=lab.pool, type="dir", path=lab.pool_path, opts=opts)
    net = lab.network
    network = libvirt.Network(
        f"{topo.name}-net", name=net.name, mode="none", bridge=net.bridge,
        addresses=[str(topo.subnet)], autostart=True,
        # DHCP serves only the per-node reservations the domains add (MAC -> topology address)
        dhcp={"enabled": True}, dns={"enabled": False}, opts=opts)
    base = libvirt.Volume(f"{topo.name}-image", name=f"{topo.name}-image.qcow2", pool=pool.name,
                          source=settings.image, format="qcow2", opts=opts)
    out: dict[str, Any] = {"provider": provider, "pool": pool, "network": network, "base": base,
                           "volumes": {}, "cloudinits": {}, "domains": {}, "boot": {}}
    boot: dict[str, Any] = {}
    first = lab.domains[0]
    if first.kernel:
        for what, name, source in (("kernel", first.kernel, settings.kernel), ("initrd", first.initrd, settings.initrd)):
            boot[what] = libvirt.Volume(f"{topo.name}-{what}", name=name, pool=pool.name, source=source,
                                        format="raw", opts=opts)
    out["boot"] = boot
    for d in lab.domains:
        n = topo.node(d.node)
        volume = libvirt.Volume(d.name, name=d.disk, pool=pool.name, base_volume_id=base.id, format="qcow2",
                                size=settings.disk_gib * 1024 ** 3, opts=opts)
        if settings.own_image:
            extra: dict[str, Any] = {"kernel": boot["kernel"].id, "initrd": boot["initrd"].id, "cmdlines": cmdlines(d.cmdline)}
        else:
            cloudinit = libvirt.CloudInitDisk(
                f"{d.name}-cloudinit", name=f"{d.name}-cloudinit.iso",
                pool=pool.name, user_data=user_data(topo, n.name, settings),
                meta_data=meta_data(topo, n.name), network_config=network_config(topo, n.address),
                opts=opts)
            extra = {"cloudinit": cloudinit.id}
            out["cloudinits"][n.name] = cloudinit
        console = ({"type": "file", "source_path": d.serial_file, "target_type": "serial", "target_port": "0"}
                   if d.serial_file else {"type": "pty", "target_port": "0", "target_type": "serial"})
        domain = libvirt.Domain(
            d.name, name=d.name, type=d.domain_type, memory=d.memory_mib, vcpu=d.vcpu,
            cpu={"mode": layout.KVM_CPU if d.domain_type == "kvm" else "custom"},
            autostart=False, qemu_agent=False, disks=[{"volume_id": volume.id}],
            network_interfaces=[{"network_id": network.id, "hostname": n.name,
                                 "addresses": [n.address], "mac": d.mac, "wait_for_lease": False}],
            consoles=[console],
            xml={"xslt": domain_xslt(d.domain_type)}, opts=opts, **extra)
        out["volumes"][n.name], out["domains"][n.name] = volume, domain

    pulumi.export("addresses", {n.name: n.address for n in topo.nodes})
    pulumi.export("platform", settings.platform)
    pulumi.export("sshUser", settings.ssh_user)
    pulumi.export("interface", topo.bridge)
    pulumi.export("remote", settings.is_remote)
    pulumi.export("domains", {n: d.name for n, d in out["domains"].items()})
    return out


def main() -> dict[str, Any]:
    """Entry point of ``__main__.py``: the topology from LAB_TOPOLOGY, settings from the stack config."""
    import pulumi

    from labcore import topology
    return build(topology.load(), settings_from(pulumi.Config(PROJECT)))
