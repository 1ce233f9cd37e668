"""The Pulumi program: the lab's four machines as libvirt VMs, derived from the topology.

One libvirt network for the lab subnet (its bridge is the topology's
``lab.bridge`` and takes the subnet's first address, the host side the guard
expects), one base volume from a cloud image, one copy-on-write volume, one
cloud-init disk and one domain per node. Each domain gets an i6300esb watchdog
(article §5.1) through a domain XSLT, because pulumi-libvirt 0.5.x has no
argument for it.

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

from lab.providers.libvirt import mac_for  # noqa: F401  (one MAC formula for both libvirt paths)
from labcore.topology import Topology

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

# Adds the watchdog device to the domain XML libvirt would otherwise define.
WATCHDOG_XSLT = """<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output omit-xml-declaration="yes" indent="yes"/>
  <xsl:template match="node()|@*">
    <xsl:copy><xsl:apply-templates select="node()|@*"/></xsl:copy>
  </xsl:template>
  <xsl:template match="/domain/devices">
    <xsl:copy>
      <xsl:apply-templates select="node()|@*"/>
      <xsl:if test="not(watchdog)">
        <watchdog model="i6300esb" action="reset"/>
      </xsl:if>
    </xsl:copy>
  </xsl:template>
</xsl:stylesheet>
"""


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
    memory: int = 2048               # MiB per node
    cpus: int = 2
    disk_gib: int = 20
    uri: str = "qemu:///system"
    pool: str = "default"
    ssh_user: str = "lab"
    ssh_public_key: str = ""

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
    return Settings(platform=platform, image=str(image), memory=number("memory", 2048),
                    cpus=number("cpus", 2), disk_gib=number("diskGib", 20),
                    uri=text("libvirtUri", "qemu:///system"), pool=text("pool", "default"),
                    ssh_user=text("sshUser", "lab"), ssh_public_key=str(key).strip()).validate()


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

def build(topo: Topology, settings: Settings) -> dict[str, Any]:
    """Declare every resource; return them by name (tests read this too)."""
    import pulumi
    import pulumi_libvirt as libvirt

    check_topology(topo)
    settings.validate()
    provider = libvirt.Provider("libvirt", uri=settings.uri)
    opts = pulumi.ResourceOptions(provider=provider)
    network = libvirt.Network(
        f"{topo.name}-net", name=topo.name, mode="nat", bridge=topo.bridge,
        addresses=[str(topo.subnet)], autostart=True,
        # DHCP serves only the per-node reservations the domains add (MAC -> topology
        # address); the nodes configure the same address statically through cloud-init.
        dhcp={"enabled": True},
        dns={"enabled": True, "local_only": True,
             "hosts": [{"hostname": n.name, "ip": n.address} for n in topo.nodes]},
        opts=opts)
    base = libvirt.Volume(f"{topo.name}-base", name=f"{topo.name}-base.qcow2", pool=settings.pool,
                          source=settings.image, format="qcow2", opts=opts)
    out: dict[str, Any] = {"provider": provider, "network": network, "base": base,
                           "volumes": {}, "cloudinits": {}, "domains": {}}
    for n in topo.nodes:
        volume = libvirt.Volume(f"{topo.name}-{n.name}", name=f"{topo.name}-{n.name}.qcow2",
                                pool=settings.pool, base_volume_id=base.id, format="qcow2",
                                size=settings.disk_gib * 1024 ** 3, opts=opts)
        cloudinit = libvirt.CloudInitDisk(
            f"{topo.name}-{n.name}-cloudinit", name=f"{topo.name}-{n.name}-cloudinit.iso",
            pool=settings.pool, user_data=user_data(topo, n.name, settings),
            meta_data=meta_data(topo, n.name), network_config=network_config(topo, n.address),
            opts=opts)
        domain = libvirt.Domain(
            f"{topo.name}-{n.name}", name=f"{topo.name}-{n.name}",
            memory=settings.memory, vcpu=settings.cpus, cpu={"mode": "host-passthrough"},
            autostart=False, qemu_agent=False, cloudinit=cloudinit.id,
            disks=[{"volume_id": volume.id}],
            network_interfaces=[{"network_id": network.id, "hostname": n.name,
                                 "addresses": [n.address], "mac": mac_for(n.address),
                                 "wait_for_lease": False}],
            consoles=[{"type": "pty", "target_port": "0", "target_type": "serial"}],
            xml={"xslt": WATCHDOG_XSLT}, opts=opts)
        out["volumes"][n.name], out["cloudinits"][n.name], out["domains"][n.name] = volume, cloudinit, domain

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
