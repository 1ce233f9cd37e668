"""libvirt VMs through Pulumi's Automation API (the program is :mod:`lab.providers.pulumi_program`).

The stack is named after the lab (``lab.name``), its state lives in a local
backend under ``$LAB_DIR/pulumi``, and its settings in the usual per-stack file
``Pulumi.<stack>.yaml`` at the repository top (``pulumi config set`` works on
it). Preflight needs no network and writes nothing: it finds the Pulumi CLI and
the libvirt plugin, checks the settings and the host's routes, and says in one
line what to install or fix.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Mapping

import yaml

from labcore import guard
from labcore import poll
from lab.providers import pulumi_program as program
from labcore import state as lab_state
from lab.providers.base import Machines, Provider, ProviderError, Report, SshHost
from lab.providers.hosts import Entry, specific_route, ssh_run
from labcore.topology import ROOT, Topology
from labcore.vm import domain_name
from lab.providers.image import insecure_key, public_key

PLUGIN_VERSION = "v0.5.4"          # the provider plugin matching pulumi-libvirt 0.5.4
INSTALL_CLI = "install the Pulumi CLI (https://www.pulumi.com/docs/install/, e.g. `curl -fsSL https://get.pulumi.com | sh`)"
INSTALL_PLUGIN = f"pulumi plugin install resource libvirt {PLUGIN_VERSION}"
# libvirtd, or the modular QEMU daemon of newer libvirt
LIBVIRT_SOCKETS = (Path("/var/run/libvirt/libvirt-sock"), Path("/var/run/libvirt/virtqemud-sock"))
BOOT_TIMEOUT = 600                 # seconds for all VMs to boot and finish cloud-init


def lab_dir() -> Path:
    """LAB_DIR without creating it (preflight must not write anything)."""
    return lab_state.lab_dir(create=False)


def stack_file(topo: Topology) -> Path:
    return ROOT / f"Pulumi.{topo.name}.yaml"


def stack_config(topo: Topology) -> dict[str, str]:
    """The stack's settings from Pulumi.<stack>.yaml, without the CLI (keys without namespace)."""
    path = stack_file(topo)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ProviderError(f"{path.name}: not valid YAML ({str(e).splitlines()[0]})") from None
    prefix = f"{program.PROJECT}:"
    return {k[len(prefix):]: str(v) for k, v in (data.get("config") or {}).items()
            if k.startswith(prefix) and not isinstance(v, dict)}


def key_path() -> Path:
    return lab_dir() / "pulumi" / "id_ed25519"


def find_libvirt_plugin(cli: str) -> bool:
    try:
        out = subprocess.run([cli, "plugin", "ls", "--json"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
        plugins = json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return False
    return any(p.get("name") == "libvirt" and p.get("kind") == "resource" for p in plugins or [])


class PulumiProvider(Provider):
    name = "pulumi"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self.interface: str | None = None
        self.program_settings: program.Settings | None = None

    # -- preflight: read only ------------------------------------------------------

    def preflight(self, topo: Topology) -> None:
        cli = shutil.which("pulumi")
        if not cli:
            raise ProviderError(f"pulumi: the Pulumi CLI is not on PATH: {INSTALL_CLI}, "
                                f"then `{INSTALL_PLUGIN}`")
        if not find_libvirt_plugin(cli):
            raise ProviderError(f"pulumi: the libvirt provider plugin is not installed: run `{INSTALL_PLUGIN}`")
        config = stack_config(topo)
        if "sshPublicKey" not in config and not key_path().with_suffix(".pub").exists():
            # create() generates the key; validate the rest with a stand-in.
            config["sshPublicKey"] = "ssh-ed25519 AAAA-generated-by-create"
        try:
            settings = program.settings_from(config)
            program.check_topology(topo)
        except program.ProgramError as e:
            raise ProviderError(f"pulumi: {e}") from None
        self.program_settings = settings
        first = topo.nodes[0].address
        if settings.is_remote:
            r = specific_route(first)
            if not r:
                raise ProviderError(
                    f"pulumi: libvirt runs on {settings.uri}; this host needs a route to {topo.subnet} via that "
                    f"hypervisor (e.g. `ip route add {topo.subnet} via <hypervisor>`), not the default route")
            self.interface = r["dev"]
        else:
            if settings.uri == "qemu:///system" and not any(p.exists() for p in LIBVIRT_SOCKETS):
                raise ProviderError(f"pulumi: libvirtd is not running (no {LIBVIRT_SOCKETS[0]}): "
                                    f"install libvirt-daemon-system and start libvirtd")
            r = specific_route(first)
            if r and r.get("dev") != topo.bridge:
                raise ProviderError(
                    f"pulumi: {topo.subnet} is already reached via {r.get('dev')} on this host; "
                    f"the lab needs its own network ({topo.bridge}): pick another lab.subnet")
            self.interface = topo.bridge

    def expected_interface(self, topo: Topology) -> str | None:
        """The libvirt bridge here, or the route towards a remote hypervisor (known after preflight)."""
        return self.interface

    # -- create / destroy --------------------------------------------------------------

    def _stack(self, topo: Topology, create: bool):
        from pulumi import automation as auto

        state = lab_dir() / "pulumi" / "state"
        env = {"PULUMI_BACKEND_URL": f"file://{state}",
               "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", ""),
               "PULUMI_SKIP_UPDATE_CHECK": "true",
               "LAB_TOPOLOGY": str(topo.path), "LAB_DIR": str(lab_dir())}
        opts = auto.LocalWorkspaceOptions(work_dir=str(ROOT), env_vars=env)
        if create:
            state.mkdir(parents=True, exist_ok=True)
            return auto.create_or_select_stack(stack_name=topo.name, work_dir=str(ROOT), opts=opts)
        return auto.select_stack(stack_name=topo.name, work_dir=str(ROOT), opts=opts)

    def create(self, topo: Topology, report: Report) -> Machines:
        if self.interface is None or self.program_settings is None:
            self.preflight(topo)
        key = key_path()
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{topo.name}-pulumi",
                            "-f", str(key)], check=True)
            report(f"pulumi: created the lab's SSH key {key}")
        stack = self._stack(topo, create=True)
        own = own_image_wanted(stack_config(topo))
        if own:
            from pulumi import automation as auto
            config = own_image_config(topo, report)
            stack.set_all_config({f"{program.PROJECT}:{k}": auto.ConfigValue(v) for k, v in config.items()})
            key = vagrant_key()
        report(f"pulumi: stack {topo.name} (state in {lab_dir() / 'pulumi' / 'state'}), up ...")
        result = stack.up(on_output=lambda line: report(line.rstrip()))
        out = {k: v.value for k, v in result.outputs.items()}
        user = out["sshUser"]
        hosts = {name: SshHost(hostname=address, user=user, key=str(key))
                 for name, address in out["addresses"].items()}
        assert set(hosts) == set(topo.names), f"stack outputs {sorted(hosts)} do not match the topology"
        timeout_scale = None
        if own and config["domainType"] == "qemu":
            from lab.providers import libvirt
            poll.set_scale(libvirt.TCG_SCALE)      # as the libvirt path under TCG: every wait stretched
            timeout_scale = libvirt.TCG_SCALE
        machines = Machines(interface=self.interface or topo.bridge, platform=out["platform"], hosts=hosts,
                            timeout_scale=timeout_scale)
        # the lab's image has no cloud-init: it is booted once its sshd lets the vagrant user in
        self._wait_until_booted(topo, machines, report, "true" if own else "test -f /var/lib/cloud/instance/boot-finished")
        return machines

    def _wait_until_booted(self, topo: Topology, machines: Machines, report: Report, booted: str) -> None:
        """Bounded poll: every VM answers SSH with the lab user and ``booted`` succeeds there."""
        state = lab_state.State(phase="created", interface=machines.interface)
        pending = dict(machines.hosts)
        for h in pending.values():
            guard.check(h.hostname, topo, state)

        def all_booted() -> bool:
            for name, h in list(pending.items()):
                try:
                    with socket.create_connection((h.hostname, h.port), timeout=5):
                        pass
                    status, _ = ssh_run(Entry(name, h.hostname, h.user, h.key, h.port),
                                        booted, timeout=15)
                except Exception:  # not booted yet: refused, timeout, auth before cloud-init
                    continue
                if status == 0:
                    report(f"pulumi: {name} {h.hostname} booted")
                    del pending[name]
            return not pending
        try:
            poll.wait_for("every VM to boot", all_booted, BOOT_TIMEOUT, every=5)
        except poll.WaitTimeout:
            raise ProviderError(f"pulumi: {', '.join(pending)} did not finish booting within "
                                f"{poll.scaled(BOOT_TIMEOUT):.0f}s; see `virsh console {domain_name(topo, next(iter(pending)))}`"
                                ) from None

    def destroy(self, topo: Topology, report: Report) -> None:
        if not (lab_dir() / "pulumi" / "state").exists():
            report("pulumi: no stack state under LAB_DIR; nothing to destroy")
            return
        if not shutil.which("pulumi"):
            raise ProviderError(f"pulumi: the Pulumi CLI is needed to destroy the stack: {INSTALL_CLI}")
        from pulumi.automation import StackNotFoundError

        try:
            stack = self._stack(topo, create=False)
        except StackNotFoundError:
            report(f"pulumi: no stack {topo.name} in {lab_dir() / 'pulumi' / 'state'}; nothing to destroy")
            return
        stack.destroy(on_output=lambda line: report(line.rstrip()))
        stack.workspace.remove_stack(topo.name)
        report(f"pulumi: stack {topo.name} destroyed (settings in {stack_file(topo).name} kept)")


def own_image_wanted(config: Mapping[str, str]) -> bool:
    """The lab's own Debian 12 image, as the libvirt path uses, unless the stack names an image or
    another platform (the article's CentOS 7 cloud image)."""
    return "image" not in config and config.get("platform", "debian12") == "debian12"


def vagrant_key() -> Path:
    """The key the lab's image lets in (its vagrant user's), as the libvirt path uses it."""
    from lab.providers.vagrant import lab_key
    return lab_key()


def own_image_config(topo: Topology, report: Report) -> dict[str, str]:
    """The stack settings for the lab's own image: built or cached (lab.providers.vmimage), its
    qcow2 disk taken out of the box archive once, its kernel probed for KVM as the libvirt path
    does, the serial consoles in $LAB_DIR/console."""
    import tarfile

    from lab.providers import libvirt, vmimage
    from provision import platforms

    img = vmimage.build(platforms.for_lab("debian12", topo), report)
    disk = lab_dir() / "pulumi" / f"image-{img.digest}.qcow2"
    if not disk.exists():
        disk.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(img.box_file) as box:
            member = box.extractfile("box.img")
            if member is None:
                raise ProviderError(f"pulumi: {img.box_file} has no box.img; remove it to build the image again")
            tmp = disk.with_suffix(".part")
            with tmp.open("wb") as out:
                shutil.copyfileobj(member, out)
            tmp.replace(disk)
    probe = libvirt.probe(img.kernel)
    report(f"pulumi: libvirt domain type {probe.domain_type}: {probe.why}")
    (lab_dir() / "console").mkdir(parents=True, exist_ok=True)
    return {"platform": "debian12", "image": str(disk), "kernel": str(img.kernel), "initrd": str(img.initrd),
            "digest": img.digest, "cmdline": img.cmdline, "domainType": probe.domain_type,
            "consoleDir": str(lab_dir() / "console"), "sshUser": "vagrant",
            "sshPublicKey": public_key(insecure_key())}


def provider(name: str, settings: Mapping[str, Any]) -> PulumiProvider:
    return PulumiProvider(settings)
