"""Machines by Vagrant: one Vagrantfile, three backends.

``docker``: containers with systemd as PID 1, built from ``docker/Dockerfile``,
on a docker network this module creates with the topology's subnet, gateway and
bridge name (so the guard can recognise the lab's interface).
``libvirt``: VMs from the lab's own Debian 12 box (:mod:`lab.providers.vmimage`)
on the lab's own libvirt network and storage pool (:mod:`lab.providers.libvirt`),
KVM where a guest runs under it, else QEMU's TCG; ``box`` = a CentOS 7 box gives
the article's EL7. ``virtualbox``: CentOS 7 VMs, as in the article.

Everything is named from the topology's ``lab.name`` and Vagrant's machine
state lives under ``$LAB_DIR/vagrant``, so several lab instances coexist. A lab
whose LAB_DIR holds a ``vagrant.d`` folder (a workshop seat) also gets its own
Vagrant home there: Vagrant takes process locks in its home (``fpcollision``
during ``up``, without retry), so two ``vagrant up`` sharing one home fail.
Such a home links the boxes of the user's Vagrant home: boxes are not fetched per seat.
Everything created carries the label ``patroni-lab.lab=<name>`` (docker) or the
name prefix (VMs), which is how ``destroy`` finds leftovers without any state.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping

from labcore import guard, poll, versions
from lab.providers import image
from lab.providers.base import Machines, Provider, ProviderError, Report, SshHost
from labcore.state import lab_dir
from labcore.topology import ROOT, Topology

BACKENDS = ("docker", "libvirt", "virtualbox")
# The platform of each backend's default machines; libvirt with a box of the user's (say centos/7) is el7.
PLATFORMS = {"docker": "debian12", "libvirt": "debian12", "virtualbox": "el7"}
FOREIGN_BOX_PLATFORM = "el7"
DOMAIN_TYPES = ("auto", "kvm", "qemu")
LABEL = "patroni-lab.lab"
LIBVIRT_SOCKETS = ("/var/run/libvirt/libvirt-sock", "/run/libvirt/libvirt-sock")
VBOX_NETWORKS_CONF = Path("/etc/vbox/networks.conf")
VBOX_DEFAULT_RANGE = ipaddress.IPv4Network("192.168.56.0/21")
USER = "vagrant"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Vagrant progress lines worth showing; the full output goes to $LAB_DIR/vagrant.log.
PROGRESS = re.compile(r"==> (\S+): (Creating|Starting|Booting|Machine booted|Importing|"
                      r"Destroying|Deleting|Stopping|Removing|Forcing)", re.I)


def platforms_pg(name: str) -> int:
    from provision import platforms
    return platforms.get(name).pg_version


def lab_key() -> Path:
    """Vagrant's insecure key, copied under LAB_DIR with mode 600 (ssh refuses it otherwise)."""
    dst = lab_dir() / "insecure_key"
    src = image.insecure_key()
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        dst.write_bytes(src.read_bytes())
    dst.chmod(0o600)
    return dst


def seat_home() -> Path | None:
    """This lab's own Vagrant home (``$LAB_DIR/vagrant.d``) if it has one, else None (Vagrant's default)."""
    home = lab_dir(create=False) / "vagrant.d"
    return home if home.is_dir() else None


def shared_home() -> Path:
    """The Vagrant home seats share their boxes and plugins with: $VAGRANT_HOME, else ~/.vagrant.d."""
    return Path(os.environ.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")


def make_seat_home(home: Path, shared: Path | None = None) -> Path:
    """Create a seat's own Vagrant home whose boxes (and user-installed plugins) are the shared ones."""
    shared = shared or shared_home()
    home.mkdir(parents=True, exist_ok=True)
    (shared / "boxes").mkdir(parents=True, exist_ok=True)
    for item in ("boxes", "gems", "plugins.json"):
        src, dst = shared / item, home / item
        if src.exists() and not dst.is_symlink() and not dst.exists():
            dst.symlink_to(src)
    return home


def apt_cache(settings: Mapping[str, Any]) -> Path:
    return Path(settings.get("apt_cache") or lab_dir() / "cache" / "apt")


def virtualbox_network_problem(subnet: ipaddress.IPv4Network,
                               conf: Path = VBOX_NETWORKS_CONF) -> str | None:
    """Why VirtualBox (>= 6.1.28) would refuse a host-only network in ``subnet``, or None."""
    allowed: list[ipaddress.IPv4Network] = []
    if conf.exists():
        for line in conf.read_text().splitlines():
            if line.strip().startswith("*"):
                for word in line.split()[1:]:
                    try:
                        allowed.append(ipaddress.ip_network(word, strict=False))
                    except ValueError:
                        continue
    else:
        allowed = [VBOX_DEFAULT_RANGE]
    if any(n.version == 4 and subnet.subnet_of(n) for n in allowed):
        return None
    ranges = ", ".join(map(str, allowed)) or "nothing"
    return (f"VirtualBox allows host-only networks only in {ranges}; add the line "
            f"'* {subnet}' to {conf} (as root) or choose lab.subnet inside {VBOX_DEFAULT_RANGE}")


class VagrantProvider(Provider):
    """The docker, libvirt and virtualbox providers: ``vagrant`` with this repo's Vagrantfile."""

    def __init__(self, backend: str, settings: Mapping[str, Any]):
        if backend not in BACKENDS:
            raise ProviderError(f"provider: {backend!r} is not a Vagrant backend ({', '.join(BACKENDS)})")
        self.name = backend
        self.settings = dict(settings)
        self.node_image = image.NODE_IMAGE     # docker: replaced by the preinstalled image in create()
        self.vm_image: Any = None              # libvirt: the lab's box (vmimage.VmImage), set in create()
        self.domain_type: str | None = None    # libvirt: kvm | qemu, chosen in create()

    @property
    def own_box(self) -> bool:
        """libvirt with no box configured: the lab's own Debian 12 box."""
        return self.name == "libvirt" and not self.settings.get("box")

    @property
    def platform(self) -> str:
        if self.name == "libvirt" and not self.own_box:
            return FOREIGN_BOX_PLATFORM
        return PLATFORMS[self.name]

    def platform_of(self, topo: Topology) -> str:
        """The machines' platform: on docker, the Debian release of the topology's PostgreSQL."""
        return topo.postgres_release.platform if self.name == "docker" else self.platform

    def version_problem(self, topo: Topology) -> str | None:
        """Another PostgreSQL than the default runs on docker nodes only (one image per Debian release);
        the VM boxes are Debian 12's (libvirt) and CentOS 7's (virtualbox)."""
        pg = topo.postgres_release
        if self.name == "docker" or pg.platform == self.platform or pg.major == versions.DEFAULT_POSTGRES:
            return None
        return (f"options.postgres_version {pg.major}: the {self.name} provider's machines run "
                f"{self.platform} (PostgreSQL {platforms_pg(self.platform)}); other versions run on "
                "`--provider docker`")

    # --- running vagrant ---------------------------------------------------

    def env(self, topo: Topology) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update({
            "LAB_TOPOLOGY": str(topo.path),
            "VAGRANT_CWD": str(ROOT),
            "VAGRANT_DOTFILE_PATH": str(lab_dir() / "vagrant"),
            "VAGRANT_DEFAULT_PROVIDER": self.name,
            # The lab talks to nothing but its own machines.
            "VAGRANT_CHECKPOINT_DISABLE": "1",
            "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
            "VAGRANT_NO_COLOR": "1",
            "LAB_BOX": str(s.get("box") or ""),
            "LAB_MEMORY": str(s.get("memory") or 1024),
            "LAB_CPUS": str(s.get("cpus") or 1),
            "LAB_NODE_IMAGE": self.node_image,
            "LAB_APT_CACHE": str(apt_cache(s)),
        })
        if self.name == "libvirt":
            from lab.providers import libvirt
            env["LAB_LIBVIRT_POOL"] = libvirt.pool_name(topo)
            env["LAB_LIBVIRT_MACS"] = ",".join(f"{k}={v}" for k, v in libvirt.macs(topo).items())
            env["LAB_CONSOLE_DIR"] = str(lab_dir() / "console")
            env["LAB_BOOT_TIMEOUT"] = str(int(poll.scaled(300)))
            if self.domain_type:
                env["LAB_DOMAIN_TYPE"] = self.domain_type
            if self.vm_image:
                boot = libvirt.pool_dir(topo)
                env.update({"LAB_BOX": self.vm_image.box,
                            "LAB_VM_KERNEL": str(boot / f"vmlinuz-{self.vm_image.digest}"),
                            "LAB_VM_INITRD": str(boot / f"initrd.img-{self.vm_image.digest}"),
                            "LAB_VM_CMDLINE": self.vm_image.cmdline})
        home = seat_home()
        if home:
            env["VAGRANT_HOME"] = str(home)
        return env

    def vagrant(self, topo: Topology, *args: str, report: Report | None = None,
                check: bool = True) -> subprocess.CompletedProcess:
        """Run vagrant; its output goes to $LAB_DIR/vagrant.log, progress lines to ``report``."""
        log = lab_dir() / "vagrant.log"
        lines: list[str] = []
        with log.open("a") as f:
            f.write(f"\n$ vagrant {' '.join(args)}\n")
            proc = subprocess.Popen(["vagrant", *args], cwd=ROOT, env=self.env(topo), text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            assert proc.stdout
            for line in proc.stdout:
                f.write(line)
                lines.append(line.rstrip())
                if report and PROGRESS.search(line):
                    # Vagrant clears the terminal line (ESC[K) even with VAGRANT_NO_COLOR.
                    report(ANSI.sub("", line).strip().lstrip("=> ").strip())
            rc = proc.wait()
        if check and rc != 0:
            tail = [l for l in lines if l.strip()][-3:]
            raise ProviderError(f"vagrant {args[0]} failed ({'; '.join(tail) or 'no output'}); "
                                f"full output in {log}")
        return subprocess.CompletedProcess(args, rc, "\n".join(lines), "")

    # --- the Provider protocol -----------------------------------------------

    def preflight(self, topo: Topology) -> None:
        problem = self.version_problem(topo)
        if problem:
            raise ProviderError(problem)
        if not shutil.which("vagrant"):
            raise ProviderError("vagrant is not installed (apt-get install --no-install-recommends vagrant)")
        try:
            image.insecure_key()
        except image.ImageError as e:
            raise ProviderError(str(e)) from None
        preflights = {"docker": self._preflight_docker, "libvirt": self._preflight_libvirt,
                      "virtualbox": self._preflight_virtualbox}
        preflights[self.name](topo)

    def _preflight_docker(self, topo: Topology) -> None:
        if not shutil.which("docker"):
            raise ProviderError("docker is not installed (apt-get install docker.io)")
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True)
        if info.returncode != 0:
            raise ProviderError("the Docker engine is not running (start it: `systemctl start docker`, "
                                "or `dockerd &` on hosts without systemd)")
        net = self._network(topo)
        if net and net.get("Labels", {}).get(LABEL) != topo.name:
            raise ProviderError(f"docker network {topo.name!r} exists but was not created by this lab; "
                                "remove or rename it, or change lab.name")

    def _preflight_libvirt(self, topo: Topology) -> None:
        from lab.providers import libvirt
        if not any(Path(p).exists() for p in LIBVIRT_SOCKETS):
            raise ProviderError("libvirt: libvirtd is not running (no /var/run/libvirt/libvirt-sock): "
                                "run scripts/bootstrap-vm.sh (installs QEMU, libvirt and vagrant-libvirt, "
                                "starts virtlogd and libvirtd), or use `--provider docker`")
        if subprocess.run([*libvirt.VIRSH, "uri"], capture_output=True).returncode != 0:
            raise ProviderError("libvirt: virsh cannot connect to qemu:///system (is libvirtd running as root? "
                                "start it with scripts/bootstrap-vm.sh)")
        chosen = self.settings.get("domain_type") or "auto"
        if chosen not in DOMAIN_TYPES:
            raise ProviderError(f"lab.domain_type {chosen!r} must be one of {', '.join(DOMAIN_TYPES)}")
        # The docker lab uses the same bridge name and subnet: only one of them can exist at a time.
        if topo.name not in libvirt.names("net-list") and Path(f"/sys/class/net/{topo.bridge}").exists():
            raise ProviderError(f"libvirt: the interface {topo.bridge} already exists and is not the lab's "
                                f"libvirt network (a docker lab is up?): run `invoke down --provider docker` first")
        if self.own_box:
            missing = [t for t in ("mmdebstrap", "mkfs.ext4", "qemu-img", "qemu-system-x86_64") if not shutil.which(t)]
            if missing:
                raise ProviderError(f"libvirt: the lab's VM image needs {', '.join(missing)} "
                                    "(run scripts/bootstrap-vm.sh)")
        plugins = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True,
                                 env=self.env(topo)).stdout
        if "vagrant-libvirt" not in plugins:
            raise ProviderError("the vagrant-libvirt plugin is missing "
                                "(apt-get install --no-install-recommends vagrant-libvirt)")

    def _preflight_virtualbox(self, topo: Topology) -> None:
        if not shutil.which("VBoxManage"):
            raise ProviderError("virtualbox: VirtualBox is not installed (no VBoxManage on PATH): install it "
                                "from https://www.virtualbox.org/wiki/Linux_Downloads (Debian/Ubuntu: Oracle's "
                                "apt repository, package virtualbox-7.0), or use `--provider docker`")
        if not Path("/dev/vboxdrv").exists():
            raise ProviderError("virtualbox: VirtualBox's kernel driver is not loaded (no /dev/vboxdrv): "
                                "run `/sbin/vboxconfig` as root, or use `--provider docker`")
        problem = virtualbox_network_problem(topo.subnet)
        if problem:
            raise ProviderError(problem)

    def create(self, topo: Topology, report: Report) -> Machines:
        if self.name == "libvirt":
            self._prepare_libvirt(topo, report)
        if self.name == "docker":
            self.node_image = self.node_image_ref(topo, report)
            self._ensure_network(topo, report)
            for n in topo.nodes:
                (apt_cache(self.settings) / n.name).mkdir(parents=True, exist_ok=True)
        report(f"vagrant up --provider {self.name} ({', '.join(topo.names)})")
        self.vagrant(topo, "up", "--provider", self.name, "--no-provision", report=report)
        interface = self.expected_interface(topo) or guard.route_interface(topo.nodes[0].address)
        if not interface:
            raise ProviderError(f"no host interface routes {topo.nodes[0].address} after vagrant up")
        key = str(lab_key())
        hosts = {n.name: SshHost(hostname=n.address, user=USER, key=key) for n in topo.nodes}
        slow = None
        if self.name == "libvirt" and self.domain_type == "qemu":
            from lab.providers import libvirt
            slow = libvirt.TCG_SCALE
        return Machines(interface=interface, platform=self.platform_of(topo), hosts=hosts, timeout_scale=slow)

    def node_image_ref(self, topo: Topology, report: Report) -> str:
        """The plain image with ``from_scratch`` (every step installs), else the preinstalled one;
        both of the Debian release that ships the topology's PostgreSQL."""
        suite = topo.postgres_release.suite
        if self.settings.get("from_scratch"):
            ref = image.ensure_node_image(report, suite)
            report(f"node image {ref}: from scratch, every step installs its packages")
            return ref
        from lab.providers import preinstalled
        from provision import platforms

        ref = preinstalled.ensure(platforms.for_lab(self.platform_of(topo), topo), apt_cache(self.settings) / "image",
                                  report, suite)
        report(f"node image {ref}: the steps' packages preinstalled (`--from-scratch` installs them step by step)")
        return ref

    def destroy(self, topo: Topology, report: Report) -> None:
        dotdir = lab_dir() / "vagrant"
        # Containers go faster by label than one by one through vagrant destroy;
        # the machine state in dotdir goes with them.
        if dotdir.exists() and shutil.which("vagrant") and self.name != "docker":
            report(f"vagrant destroy ({self.name})")
            rc = self.vagrant(topo, "destroy", "--force", report=report, check=False).returncode
            if rc != 0:
                report(f"vagrant destroy returned {rc}; removing leftovers directly")
        sweeps = {"docker": self._sweep_docker, "libvirt": self._sweep_libvirt, "virtualbox": self._sweep_virtualbox}
        sweeps[self.name](topo, report)
        shutil.rmtree(dotdir, ignore_errors=True)

    # --- state of the machines (for `invoke status`) ---------------------------

    def machine_states(self, topo: Topology) -> dict[str, str]:
        """node name -> running / exited / not created ... (no traffic to the nodes)."""
        if self.name == "docker":
            out = {}
            for n in topo.nodes:
                r = subprocess.run(["docker", "inspect", "--format", "{{.State.Status}}",
                                    self.container(topo, n.name)], capture_output=True, text=True)
                out[n.name] = r.stdout.strip() if r.returncode == 0 else "not created"
            return out
        res = self.vagrant(topo, "status", "--machine-readable", check=False)
        states = {}
        for line in res.stdout.splitlines():
            parts = line.split(",")
            if len(parts) >= 4 and parts[2] == "state":
                states[parts[1]] = parts[3]
        return {n.name: states.get(n.name, "unknown") for n in topo.nodes}

    # --- docker ----------------------------------------------------------------

    @staticmethod
    def container(topo: Topology, node: str) -> str:
        return f"{topo.name}-{node}"

    @staticmethod
    def _network(topo: Topology) -> dict | None:
        r = subprocess.run(["docker", "network", "inspect", topo.name], capture_output=True, text=True)
        if r.returncode != 0:
            return None
        found = json.loads(r.stdout)
        return found[0] if found else None

    def _ensure_network(self, topo: Topology, report: Report) -> None:
        net = self._network(topo)
        if net:
            return
        report(f"docker network {topo.name}: {topo.subnet} on bridge {topo.bridge}")
        r = subprocess.run(
            ["docker", "network", "create", "--driver", "bridge", "--subnet", str(topo.subnet),
             "--gateway", topo.gateway, "-o", f"com.docker.network.bridge.name={topo.bridge}",
             "--label", f"{LABEL}={topo.name}", topo.name], capture_output=True, text=True)
        if r.returncode != 0:
            raise ProviderError(f"docker network create {topo.name} failed: {r.stderr.strip()}")

    def _sweep_docker(self, topo: Topology, report: Report) -> None:
        if not shutil.which("docker"):
            return
        if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
            raise ProviderError("the Docker engine is not running: cannot look for the lab's containers "
                                "(start it, then run `invoke down` again)")
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}={topo.name}"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            report(f"removing {len(ids)} container(s) labelled {LABEL}={topo.name}")
            subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, text=True)
        nets = subprocess.run(["docker", "network", "ls", "-q", "--filter", f"label={LABEL}={topo.name}"],
                              capture_output=True, text=True).stdout.split()
        for net in nets:
            report(f"removing docker network {topo.name}")
            r = subprocess.run(["docker", "network", "rm", net], capture_output=True, text=True)
            if r.returncode != 0:
                raise ProviderError(f"docker network rm {topo.name} failed: {r.stderr.strip()}")
        vols = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label={LABEL}={topo.name}"],
                              capture_output=True, text=True).stdout.split()
        if vols:
            subprocess.run(["docker", "volume", "rm", "-f", *vols], capture_output=True, text=True)

    def expected_interface(self, topo: Topology) -> str | None:
        """The host side of the lab network, named by the topology (docker, libvirt)."""
        return topo.bridge if self.name in ("docker", "libvirt") else None

    # --- VMs ---------------------------------------------------------------------

    def _prepare_libvirt(self, topo: Topology, report: Report) -> None:
        """The box, the pool (holding the kernel the VMs boot), the network and the domain type."""
        from lab.providers import libvirt, vmimage
        from provision import platforms

        if self.own_box:
            self.vm_image = vmimage.build(platforms.for_lab(self.platform, topo), report)
            self._ensure_box(topo, report)
        self._ensure_pool(topo, report)
        if self.vm_image:
            for src, dst in ((self.vm_image.kernel, f"vmlinuz-{self.vm_image.digest}"),
                             (self.vm_image.initrd, f"initrd.img-{self.vm_image.digest}")):
                target = libvirt.pool_dir(topo) / dst
                if not target.exists():
                    shutil.copy(src, target)
        self._ensure_libvirt_network(topo, report)
        (lab_dir() / "console").mkdir(exist_ok=True)
        self.domain_type, why = self._choose_domain_type()
        report(f"libvirt domain type {self.domain_type}: {why}")
        if self.domain_type == "qemu" and poll.timeout_scale() == 1.0:
            poll.set_scale(libvirt.TCG_SCALE)
            report(f"TCG is several times slower than KVM: every wait of the lab's commands is stretched "
                   f"x{libvirt.TCG_SCALE:g} while these VMs exist ({poll.SCALE_ENV} or --scale choose another)")

    def _choose_domain_type(self) -> tuple[str, str]:
        from lab.providers import libvirt
        chosen = self.settings.get("domain_type") or "auto"
        if chosen != "auto":
            return chosen, "from lab.domain_type (INVOKE_LAB_DOMAIN_TYPE)"
        if not self.vm_image:
            return "kvm", "a box of your own: set lab.domain_type=qemu if KVM guests do not run here"
        p = libvirt.probe(self.vm_image.kernel)
        return p.domain_type, p.why + " (force with INVOKE_LAB_DOMAIN_TYPE=kvm|qemu)"

    def _ensure_box(self, topo: Topology, report: Report) -> None:
        """Add the lab's box to Vagrant unless it is there; remove the lab's outdated boxes."""
        from lab.providers import vmimage
        listed = self.vagrant(topo, "box", "list", "--machine-readable", check=False).stdout
        boxes = {parts[3] for parts in (line.split(",") for line in listed.splitlines())
                 if len(parts) >= 4 and parts[2] == "box-name"}
        if self.vm_image.box not in boxes:
            report(f"adding the box {self.vm_image.box} to Vagrant")
            self.vagrant(topo, "box", "add", "--force", "--name", self.vm_image.box, str(self.vm_image.box_file))
        for old in sorted(b for b in boxes if b.startswith(vmimage.BOX_PREFIX + "-") and b != self.vm_image.box):
            if self.vagrant(topo, "box", "remove", "--force", "--all", old, check=False).returncode == 0:
                report(f"removed the outdated box {old}")

    def _ensure_pool(self, topo: Topology, report: Report) -> None:
        from lab.providers import libvirt
        name = libvirt.pool_name(topo)
        if name not in libvirt.names("pool-list"):
            report(f"libvirt storage pool {name}: {libvirt.pool_dir(topo)}")
            xml = lab_dir() / "libvirt-pool.xml"
            xml.write_text(libvirt.pool_xml(topo))
            for step in (["pool-define", str(xml)], ["pool-build", name]):
                r = libvirt.virsh(*step)
                if r.returncode != 0:
                    raise ProviderError(f"virsh {step[0]} {name} failed: {r.stderr.strip()}")
        if "running" not in libvirt.virsh("pool-info", name).stdout:
            r = libvirt.virsh("pool-start", name)
            if r.returncode != 0:
                raise ProviderError(f"virsh pool-start {name} failed: {r.stderr.strip()}")

    def _ensure_libvirt_network(self, topo: Topology, report: Report) -> None:
        """Define and start the lab's network on ``lab.bridge`` (vagrant-libvirt reuses it by address and name)."""
        from lab.providers import libvirt
        want = libvirt.network_xml(topo)
        if topo.name in libvirt.names("net-list"):
            if libvirt.virsh("net-info", topo.name).stdout.split("Active:")[-1].split()[:1] != ["yes"]:
                r = libvirt.virsh("net-start", topo.name)
                if r.returncode != 0:
                    raise ProviderError(f"virsh net-start {topo.name} failed: {r.stderr.strip()}")
            return
        report(f"libvirt network {topo.name}: {topo.subnet} on bridge {topo.bridge}, isolated, "
               f"DHCP reservations for {', '.join(topo.names)}")
        xml = lab_dir() / "libvirt-network.xml"
        xml.write_text(want)
        for step in (["net-define", str(xml)], ["net-start", topo.name]):
            r = libvirt.virsh(*step)
            if r.returncode != 0:
                raise ProviderError(f"virsh {step[0]} {topo.name} failed: {r.stderr.strip()}")

    def _sweep_libvirt(self, topo: Topology, report: Report) -> None:
        """Remove the lab's domains (with their disks), its network and its pool with every volume."""
        from lab.providers import libvirt
        if not shutil.which("virsh") or libvirt.virsh("uri").returncode != 0:
            return
        ours = {libvirt.domain_name(topo, n) for n in topo.names}
        for dom in libvirt.names("list"):
            if dom in ours:
                report(f"removing libvirt domain {dom}")
                libvirt.virsh("destroy", dom)
                libvirt.virsh("undefine", dom, "--remove-all-storage", "--nvram")
        if topo.name in libvirt.names("net-list"):
            report(f"removing libvirt network {topo.name}")
            libvirt.virsh("net-destroy", topo.name)
            libvirt.virsh("net-undefine", topo.name)
        pool = libvirt.pool_name(topo)
        if pool in libvirt.names("pool-list"):
            report(f"removing libvirt storage pool {pool} and its volumes")
            libvirt.virsh("pool-start", pool)
            libvirt.virsh("pool-refresh", pool)
            for vol in libvirt.volumes(pool):
                libvirt.virsh("vol-delete", vol, "--pool", pool)
            libvirt.virsh("pool-destroy", pool)
            libvirt.virsh("pool-delete", pool)
            libvirt.virsh("pool-undefine", pool)
        left = libvirt.leftovers(topo)
        if left:
            raise ProviderError(f"libvirt still holds {', '.join(left)}: remove it with virsh, then run "
                                "`invoke down` again")

    def _sweep_virtualbox(self, topo: Topology, report: Report) -> None:
        if not shutil.which("VBoxManage"):
            return
        vms = subprocess.run(["VBoxManage", "list", "vms"], capture_output=True, text=True).stdout
        ours = {f"{topo.name}-{n}" for n in topo.names}
        for m in re.finditer(r'^"([^"]+)"', vms, re.M):
            if m.group(1) in ours:
                report(f"removing VirtualBox VM {m.group(1)}")
                subprocess.run(["VBoxManage", "controlvm", m.group(1), "poweroff"], capture_output=True)
                subprocess.run(["VBoxManage", "unregistervm", m.group(1), "--delete"], capture_output=True)


def provider(name: str, settings: Mapping[str, Any]) -> VagrantProvider:
    """Registry hook (see :mod:`lab.providers`)."""
    return VagrantProvider(name, settings)


def docker_answers(timeout: float = 10) -> bool:
    """Whether a Docker engine answers here (the path this lab's CI runs on)."""
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def detect() -> tuple[str, str]:
    """The provider to use when none is configured, and why.

    Docker first when its engine answers: it is the path the lab's tests run on.
    The VM providers only when Docker cannot serve.
    """
    if docker_answers():
        return "docker", "the Docker engine answers here, and docker is the provider the lab's tests run on"
    if any(Path(p).exists() for p in LIBVIRT_SOCKETS):
        return "libvirt", "no Docker engine answers here, and libvirtd is running"
    if shutil.which("VBoxManage") and Path("/dev/vboxdrv").exists():
        return "virtualbox", "no Docker engine answers here, and VirtualBox is installed"
    return "docker", "no Docker engine, libvirtd or VirtualBox found here; docker is the tested path"
