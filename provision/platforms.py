"""The one per-platform table: everything that differs between operating systems.

Steps read only this table, never ``if platform == ...``. ``debian12`` is what the
lab runs in containers here; ``el7`` is the article's CentOS 7 (article §2), kept
correct as a plan that tests check command by command.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from labcore import versions

if TYPE_CHECKING:
    from labcore.topology import Topology

# The Patroni a platform installs unless the topology chooses another (options.patroni_version,
# :func:`for_lab`); the wheelhouse and the node's check use the same string.
PATRONI_VERSION = versions.DEFAULT_PATRONI

# Package groups only some option values install (options.firewall = open-ports):
# left out of a preinstalled image, so a default lab gets exactly what its steps install.
OPTIONAL_GROUPS: tuple[str, ...] = ("firewall-open",)


@dataclass(frozen=True)
class Platform:
    name: str
    package_fact: str                 # shell: prints the names of installed packages among "$@"
    install: str                      # shell prefix that installs the packages appended to it
    repo_setup: tuple[tuple[str, str, str], ...]   # (what, command, unless-check) before any package
    packages: dict[str, tuple[str, ...]]      # step key -> package names
    pg_version: int
    pg_bin: str
    pg_home: str                      # the postgres user's home directory
    createcluster_conf: str | None    # Debian: must say "no main cluster" before PostgreSQL arrives
    chrony_conf: str
    chrony_options_file: str          # where the daemon's command-line options live
    chrony_options_var: str
    chrony_default_options: str
    chrony_service: str
    etcd_conf: str
    etcd_service: str
    etcd_data_dir: str
    dcs: str                          # Patroni's DCS section: etcd (v2 API) or etcd3
    etcd_enable_v2: bool              # etcd must serve v2 when Patroni uses ``etcd:``
    patroni_install: tuple[str, ...]  # commands that install Patroni (the wheelhouse is already uploaded)
    patroni_bin: str                  # directory holding patroni and patronictl
    patroni_pip: str                  # pip that reports the installed Patroni version
    patroni_spec: str                 # what the install fetches (pinned)
    patroni_version: str              # the release patroni_spec pins
    uses_wheelhouse: bool
    python: str                       # the nodes' Python (major.minor): compiled wheels must match it
    primary_role: str                 # the role name Patroni passes to callbacks
    start_timeout_key: str            # master_start_timeout (< 4) or primary_start_timeout (4.x)
    vip_privilege: str                # capabilities (unit drop-in) or sudo (systemd too old for ambient caps)
    systemd_plus_prefix: bool         # "ExecStartPre=+" needs systemd >= 231
    haproxy_conf: str = "/etc/haproxy/haproxy.cfg"
    keepalived_dir: str = "/etc/keepalived"
    firewall: str = "nftables"        # the firewall service: nftables | firewalld
    selinux: bool = False
    tools: dict[str, str] = field(default_factory=dict)   # absolute paths used in sudo rules and scripts

    def all_packages(self, skip: tuple[str, ...] = OPTIONAL_GROUPS) -> tuple[str, ...]:
        """Every package the steps install on a lab with default options, once each, in table order.

        The docker provider's preinstalled image is built from exactly this list, so a
        package added to a step's group is in the next image (its tag hashes the list).
        """
        names: list[str] = []
        for group, pkgs in self.packages.items():
            if group not in skip:
                names += [n for n in pkgs if n not in names]
        return tuple(names)


DEBIAN12 = Platform(
    name="debian12",
    package_fact='for p in "$@"; do dpkg-query -W -f=\'${db:Status-Abbrev} ${Package}\\n\' "$p" 2>/dev/null'
                 ' | awk \'$1=="ii"{print $2}\'; done',
    # apt's lists may be missing or stale in a fresh image: update once and retry.
    install="export DEBIAN_FRONTEND=noninteractive; apt_install() { apt-get install -y -q "
            "--no-install-recommends -o Dpkg::Options::=--force-confold \"$@\"; }; "
            "apt_install {pkgs} || { apt-get update -q && apt_install {pkgs}; }",
    repo_setup=(),
    packages={
        "time": ("chrony",),
        "firewall-open": ("nftables",),
        "etcd": ("etcd-server", "etcd-client", "curl"),
        "postgres": ("postgresql-15", "locales"),
        "patroni": ("python3-venv", "curl", "sudo", "procps"),
        "vip": ("iproute2", "iputils-arping"),
        "watchdog": ("procps",),
        "keepalived": ("keepalived", "curl", "procps"),
        "haproxy": ("haproxy",),
    },
    pg_version=15,
    pg_bin="/usr/lib/postgresql/15/bin",
    pg_home="/var/lib/postgresql",
    createcluster_conf="/etc/postgresql-common/createcluster.d/50-patroni-lab.conf",
    chrony_conf="/etc/chrony/chrony.conf",
    chrony_options_file="/etc/default/chrony",
    chrony_options_var="DAEMON_OPTS",
    chrony_default_options="-F 1",
    chrony_service="chrony",
    etcd_conf="/etc/default/etcd",
    etcd_service="etcd",
    etcd_data_dir="/var/lib/etcd/default.etcd",
    dcs="etcd3",
    etcd_enable_v2=False,
    patroni_install=(
        "test -x /opt/patroni/bin/pip || python3 -m venv /opt/patroni",
        f"/opt/patroni/bin/pip install -q --no-index --find-links /var/cache/patroni-lab/wheelhouse "
        f"'patroni[etcd3]=={PATRONI_VERSION}' psycopg2-binary",
    ),
    patroni_bin="/opt/patroni/bin",
    patroni_pip="/opt/patroni/bin/pip",
    patroni_spec=f"patroni[etcd3]=={PATRONI_VERSION}",
    patroni_version=PATRONI_VERSION,
    uses_wheelhouse=True,
    python="3.11",
    primary_role="primary",
    start_timeout_key="primary_start_timeout",
    vip_privilege="capabilities",
    systemd_plus_prefix=True,
    tools={"ip": "/usr/sbin/ip", "arping": "/usr/bin/arping", "modprobe": "/usr/sbin/modprobe",
           "chown": "/usr/bin/chown", "curl": "/usr/bin/curl", "pgrep": "/usr/bin/pgrep",
           "systemctl": "/usr/bin/systemctl"},
)

# CentOS 7 left support on 2024-06-30: every repository comes from an archive.
_VAULT = ("sed -i -e 's/^mirrorlist=/#mirrorlist=/' "
          "-e 's|^#\\?baseurl=http://mirror.centos.org|baseurl=http://vault.centos.org|' "
          "/etc/yum.repos.d/CentOS-*.repo")
_EPEL = ("yum install -y https://archives.fedoraproject.org/pub/archive/epel/7/x86_64/Packages/e/"
         "epel-release-7-14.noarch.rpm && sed -i -e 's/^metalink=/#metalink=/' "
         "-e 's|^#\\?baseurl=.*|baseurl=https://archives.fedoraproject.org/pub/archive/epel/7/$basearch|' "
         "/etc/yum.repos.d/epel.repo")
_PGDG = ("yum install -y https://download.postgresql.org/pub/repos/yum/reporpms/EL-7-x86_64/"
         "pgdg-redhat-repo-latest.noarch.rpm && sed -i "
         "'s|download.postgresql.org/pub/repos/yum/|yum-archive.postgresql.org/|' "
         "/etc/yum.repos.d/pgdg-redhat-all.repo")

EL7 = Platform(
    name="el7",
    package_fact='for p in "$@"; do rpm -q --qf \'%{NAME}\\n\' "$p" 2>/dev/null | grep -vx "package .*"; done',
    install="yum install -y -q {pkgs}",
    repo_setup=(
        ("CentOS 7 base repositories from vault.centos.org", _VAULT,
         "! grep -q '^mirrorlist=' /etc/yum.repos.d/CentOS-Base.repo"),
        ("EPEL 7 from the Fedora archive", _EPEL, "rpm -q epel-release"),
        ("PGDG EL-7 from the PostgreSQL yum archive", _PGDG, "rpm -q pgdg-redhat-repo"),
    ),
    packages={
        "time": ("chrony",),
        "firewall-open": ("firewalld",),
        "etcd": ("etcd", "curl"),
        "postgres": ("postgresql12-server", "postgresql12-contrib"),
        "patroni": ("python3", "python3-pip", "python3-devel", "gcc", "curl", "sudo", "procps-ng"),
        "vip": ("iproute", "iputils"),
        "watchdog": ("procps-ng",),
        "keepalived": ("keepalived", "curl", "procps-ng"),
        "haproxy": ("haproxy",),
    },
    pg_version=12,
    pg_bin="/usr/pgsql-12/bin",
    pg_home="/var/lib/pgsql",
    createcluster_conf=None,
    chrony_conf="/etc/chrony.conf",
    chrony_options_file="/etc/sysconfig/chronyd",
    chrony_options_var="OPTIONS",
    chrony_default_options="",
    chrony_service="chronyd",
    etcd_conf="/etc/etcd/etcd.conf",
    etcd_service="etcd",
    etcd_data_dir="/var/lib/etcd/default.etcd",
    dcs="etcd",
    etcd_enable_v2=True,
    # EL7's pip 9 cannot read modern wheels' metadata: upgrade it within Python 3.6's range first.
    patroni_install=(
        "pip3 install -q --upgrade 'pip<22' 'setuptools<60'",
        f"pip3 install -q 'patroni[etcd]=={PATRONI_VERSION}' 'psycopg2-binary<2.9.6'",
    ),
    patroni_bin="/usr/local/bin",
    patroni_pip="pip3",
    patroni_spec=f"patroni[etcd]=={PATRONI_VERSION}",
    patroni_version=PATRONI_VERSION,
    uses_wheelhouse=False,
    python="3.6",
    primary_role="primary",
    start_timeout_key="primary_start_timeout",
    vip_privilege="sudo",           # systemd 219 has no AmbientCapabilities
    systemd_plus_prefix=False,
    firewall="firewalld",
    selinux=True,
    tools={"ip": "/sbin/ip", "arping": "/sbin/arping", "modprobe": "/sbin/modprobe",
           "chown": "/bin/chown", "curl": "/usr/bin/curl", "pgrep": "/usr/bin/pgrep",
           "systemctl": "/usr/bin/systemctl"},
)

def _debian_with(release: versions.PostgresRelease, base: Platform = DEBIAN12) -> Platform:
    """Another Debian release: the same packages, its PostgreSQL and its Python."""
    major = release.major
    return replace(base, name=release.platform, pg_version=major, pg_bin=f"/usr/lib/postgresql/{major}/bin",
                   packages={**base.packages, "postgres": (f"postgresql-{major}", "locales")},
                   python=release.python)


# Debian 11 has no merged /usr: its tools live where sudo rules and scripts must name them
DEBIAN11 = replace(_debian_with(versions.POSTGRES[13]),
                   tools={**DEBIAN12.tools, "ip": "/bin/ip", "modprobe": "/sbin/modprobe", "chown": "/bin/chown",
                          "systemctl": "/bin/systemctl"})
DEBIAN13 = _debian_with(versions.POSTGRES[17])

PLATFORMS: dict[str, Platform] = {p.name: p for p in (DEBIAN11, DEBIAN12, DEBIAN13, EL7)}


def get(name: str | None) -> Platform:
    """The platform called ``name`` (default debian12); a one-line error lists the known ones."""
    name = name or "debian12"
    try:
        return PLATFORMS[name]
    except KeyError:
        raise ValueError(f"unknown platform {name!r} (known: {', '.join(PLATFORMS)})") from None


def with_patroni(plat: Platform, release: versions.PatroniRelease) -> Platform:
    """``plat`` installing another Patroni, with the names that release uses (labcore.versions)."""
    if release.version == plat.patroni_version:
        return plat
    dcs = "etcd" if "etcd" in (plat.dcs, release.dcs) else release.dcs     # a v2-only side keeps etcd's v2 API
    old, new = plat.patroni_spec, f"patroni[{dcs}]=={release.version}"
    return replace(plat, patroni_version=release.version, patroni_spec=new,
                   patroni_install=tuple(c.replace(old, new) for c in plat.patroni_install),
                   dcs=dcs, etcd_enable_v2=dcs == "etcd",
                   primary_role=release.primary_role, start_timeout_key=release.start_timeout_key)


def for_lab(name: str | None, topo: Topology) -> Platform:
    """The platform of the lab's machines with the Patroni its topology chooses. Debian machines of
    another release than the topology's PostgreSQL (a hosts-provider machine, say) are refused."""
    plat, pg = get(name), topo.postgres_release
    if plat.name.startswith("debian") and plat.name != pg.platform:
        raise ValueError(f"the machines run {plat.name} (PostgreSQL {plat.pg_version}) and the topology asks for "
                         f"PostgreSQL {pg.major} ({pg.platform}): set options.postgres_version: {plat.pg_version} "
                         "or use machines of that release")
    return with_patroni(plat, topo.patroni_release)
