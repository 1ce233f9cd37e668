"""The machine commands without machines: wiring, refusals, provider choice, rollback."""
from __future__ import annotations

import inspect
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from invoke import Config, Context, Exit

from lab import lifecycle, sshconfig
from labcore import topology
from lab.providers import image
from labcore import state as lab_state
from lab.cli import machines
from lab.providers import vagrant as vagrant_provider
from lab.providers.base import Machines, Provider, ProviderError, SshHost
from labcore.topology import ROOT


@pytest.fixture(autouse=True)
def lab_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.delenv("INVOKE_LAB_PROVIDER", raising=False)
    return tmp_path / "lab"


@pytest.fixture
def unrouted(tmp_path, monkeypatch) -> topology.Topology:
    """The shipped topology moved to TEST-NET-2, which no host interface carries."""
    f = tmp_path / "t.yml"
    f.write_text(topology.DEFAULT_PATH.read_text().replace("192.168.234.", "198.51.100."))
    monkeypatch.setenv("LAB_TOPOLOGY", str(f))
    return topology.load()


def no_traffic(monkeypatch):
    """Fail the test if anything runs a process or opens a connection."""
    def boom(*a, **kw):
        raise AssertionError(f"unexpected traffic/process: {a[:1]}")
    monkeypatch.setattr(subprocess, "run", boom)
    monkeypatch.setattr(subprocess, "Popen", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    monkeypatch.setattr(socket.socket, "connect", boom)


# --- wiring -------------------------------------------------------------------------

def test_every_task_is_documented_and_every_option_has_help():
    for t in machines.TASKS:
        assert t.__doc__ and t.__doc__.strip(), t.name
        params = [p for p in inspect.signature(t.body).parameters if p != "c"]
        for p in params:
            assert p in t.help, f"{t.name}: --{p} has no help"


def test_tasks_py_exposes_the_machine_commands():
    import importlib.util
    spec = importlib.util.spec_from_file_location("lab_tasks", ROOT / "tasks.py")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    assert {"up", "down", "status", "ssh", "rebuild"} <= set(tasks.ns.task_names)


def test_invoke_list_works():
    r = subprocess.run([str(Path(__import__("sys").executable).with_name("invoke")), "--list"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "rebuild" in r.stdout


# --- refusals before anything exists ----------------------------------------------------

def test_status_before_up_says_not_up_and_contacts_nothing(unrouted, monkeypatch, capsys):
    no_traffic(monkeypatch)
    machines.status(Context())
    assert "the lab is not up" in capsys.readouterr().out


def test_ssh_before_up_refuses(unrouted, monkeypatch):
    no_traffic(monkeypatch)
    with pytest.raises(Exit) as e:
        machines.ssh(Context(), "node1")
    assert "the lab is not up" in str(e.value.message) and e.value.code == 2


def test_a_bad_topology_fails_fast_with_its_message(tmp_path, monkeypatch):
    data = yaml.safe_load(topology.DEFAULT_PATH.read_text())
    data["vips"]["read_write"] = data["nodes"][0]["address"]
    f = tmp_path / "bad.yml"
    f.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("LAB_TOPOLOGY", str(f))
    no_traffic(monkeypatch)
    with pytest.raises(Exit) as e:
        machines.up(Context(), provider="docker")
    assert str(e.value.message).startswith("error: vips.read_write: 192.168.234.201")


def test_an_unknown_provider_is_one_line(unrouted):
    with pytest.raises(Exit) as e:
        machines.up(Context(), provider="vmware")
    assert "unknown provider 'vmware'" in str(e.value.message)


# --- provider choice ------------------------------------------------------------------

def project_config(monkeypatch, **env) -> Config:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = Config(project_location=str(ROOT))
    cfg.load_project()
    cfg.load_shell_env()
    return cfg


def test_provider_comes_from_invoke_yaml_then_env_then_option(monkeypatch):
    assert machines.settings(Context(project_config(monkeypatch)))["provider"] == "auto"
    cfg = machines.settings(Context(project_config(monkeypatch, INVOKE_LAB_PROVIDER="libvirt")))
    assert lifecycle.choose_provider(None, cfg) == "libvirt"
    assert lifecycle.choose_provider("virtualbox", cfg) == "virtualbox"


def test_auto_picks_docker_without_a_usable_hypervisor(monkeypatch, tmp_path):
    monkeypatch.setattr(vagrant_provider, "LIBVIRT_SOCKETS", (str(tmp_path / "no-sock"),))
    monkeypatch.setattr(vagrant_provider.shutil, "which", lambda name: None)
    name, why = lifecycle.provider_choice(None, {"provider": "auto"})
    assert name == "docker" and why.startswith("auto: no Docker engine, libvirtd or VirtualBox")


def test_auto_prefers_docker_when_its_engine_answers_even_with_libvirtd(monkeypatch, tmp_path):
    sock = tmp_path / "libvirt-sock"
    sock.touch()
    monkeypatch.setattr(vagrant_provider, "LIBVIRT_SOCKETS", (str(sock),))
    monkeypatch.setattr(vagrant_provider, "docker_answers", lambda: True)
    name, why = lifecycle.provider_choice(None, {})
    assert name == "docker" and "the Docker engine answers" in why


def test_auto_picks_libvirt_only_when_docker_does_not_answer(monkeypatch, tmp_path):
    sock = tmp_path / "libvirt-sock"
    sock.touch()
    monkeypatch.setattr(vagrant_provider, "LIBVIRT_SOCKETS", (str(sock),))
    monkeypatch.setattr(vagrant_provider, "docker_answers", lambda: False)
    name, why = lifecycle.provider_choice(None, {})
    assert name == "libvirt" and "libvirtd is running" in why


def test_docker_answers_asks_the_engine(monkeypatch):
    calls = []
    monkeypatch.setattr(vagrant_provider.shutil, "which", lambda name: "/usr/bin/docker")
    monkeypatch.setattr(vagrant_provider.subprocess, "run",
                        lambda args, **kw: calls.append(args) or subprocess.CompletedProcess(args, 1))
    assert vagrant_provider.docker_answers() is False and calls[0][:2] == ["docker", "info"]


def test_chosen_provider_and_its_reason_come_from_the_option_then_settings():
    assert lifecycle.provider_choice("hosts", {"provider": "docker"}) == ("hosts", "from --provider")
    assert lifecycle.provider_choice(None, {"provider": "libvirt"})[1].startswith("from INVOKE_LAB_PROVIDER")


def test_virtualbox_network_range_is_explained(tmp_path):
    import ipaddress
    subnet = ipaddress.IPv4Network("192.168.234.0/24")
    msg = vagrant_provider.virtualbox_network_problem(subnet, tmp_path / "networks.conf")
    assert "192.168.56.0/21" in msg and "* 192.168.234.0/24" in msg and "\n" not in msg
    assert vagrant_provider.virtualbox_network_problem(ipaddress.IPv4Network("192.168.57.0/24"),
                                                       tmp_path / "networks.conf") is None
    (tmp_path / "networks.conf").write_text("* 10.0.0.0/8 192.168.0.0/16\n")
    assert vagrant_provider.virtualbox_network_problem(subnet, tmp_path / "networks.conf") is None


def test_no_base_image_at_all_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(image, "image_exists", lambda ref: False)
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    monkeypatch.setattr(image, "_docker", lambda *a: subprocess.CompletedProcess(a, 1, "", "registry unreachable"))
    with pytest.raises(image.ImageError) as e:
        image.base_image(lambda m: None)
    assert "mmdebstrap" in str(e.value) and "registry unreachable" in str(e.value)


# --- lifecycle with a provider that creates nothing real --------------------------------

class FakeProvider(Provider):
    name = "docker"

    def __init__(self, fail_create: bool = False):
        self.fail_create = fail_create
        self.created = self.destroyed = 0

    def preflight(self, topo):
        pass

    def create(self, topo, report):
        self.created += 1
        if self.fail_create:
            raise ProviderError("vagrant up failed (boom)")
        hosts = {n.name: SshHost(n.address, "vagrant", "/k") for n in topo.nodes}
        return Machines(interface=topo.bridge, platform="debian12", hosts=hosts)

    def destroy(self, topo, report):
        self.destroyed += 1


@pytest.fixture
def fake(monkeypatch):
    prov = FakeProvider()
    monkeypatch.setattr(lifecycle.providers, "get", lambda name, settings=None: prov)
    monkeypatch.setattr(lifecycle, "verify_routes", lambda topo, m: None)
    monkeypatch.setattr(lifecycle, "wait_for_ssh", lambda *a, **kw: None)
    return prov


def test_failed_creation_is_rolled_back_and_leaves_no_state(unrouted, fake):
    fake.fail_create = True
    with pytest.raises(ProviderError, match="boom"):
        lifecycle.up(unrouted, "docker", {}, lambda m: None)
    assert fake.destroyed == 1
    assert lab_state.load().phase == "absent" and not sshconfig.path().exists()


def test_failed_provisioning_keeps_the_machines_and_says_what_next(unrouted, fake, monkeypatch):
    import provision

    def broken(topo, **kw):
        raise RuntimeError("step etcd failed")
    monkeypatch.setattr(provision, "run", broken)
    with pytest.raises(lifecycle.LabError) as e:
        lifecycle.up(unrouted, "docker", {}, lambda m: None)
    assert "invoke provision" in str(e.value) and "invoke down" in str(e.value)
    st = lab_state.load()
    assert st.phase == "created" and st.interface == unrouted.bridge and fake.destroyed == 0
    assert sshconfig.path().exists()


def test_up_records_state_and_timings_then_up_again_reuses(unrouted, fake, monkeypatch):
    import provision
    calls = []
    monkeypatch.setattr(provision, "run", lambda topo, **kw: calls.append(1) or 0)
    lines: list[str] = []
    st = lifecycle.up(unrouted, "docker", {}, lines.append)
    assert st.phase == "provisioned" and st.platform == "debian12"
    assert {"create", "machines", "provision"} <= set(st.timings)
    assert any(l.startswith("machines ready in") for l in lines)
    lifecycle.up(unrouted, "docker", {}, lines.append)
    assert len(calls) == 2 and any(l.startswith("reusing") for l in lines)


def test_up_with_another_provider_than_the_running_lab_refuses(unrouted, fake, monkeypatch):
    lab_state.save(lab_state.State(phase="created", provider="libvirt", interface="virbr1",
                                   topology=str(unrouted.path)))
    with pytest.raises(lifecycle.LabError, match="up with provider libvirt"):
        lifecycle.up(unrouted, "docker", {}, lambda m: None)
    assert fake.created == 0


def test_down_without_state_still_sweeps_leftovers(unrouted, fake):
    lifecycle.down(unrouted, "docker", {}, lambda m: None)
    assert fake.destroyed == 1 and lab_state.load().phase == "absent"


def test_ssh_config_aliases_member_names_and_uses_topology_addresses(unrouted):
    hosts = {n.name: SshHost(n.address, "vagrant", "/lab/insecure_key") for n in unrouted.nodes}
    text = sshconfig.render(unrouted, Machines("plab0", "debian12", hosts))
    assert "Host node1 pg1\n  HostName 198.51.100.201\n  User vagrant\n" in text
    assert text.count("HostName ") == 4 and "IdentityFile /lab/insecure_key" in text


def test_status_reads_patroni_and_vip_holders(unrouted, monkeypatch):
    from types import SimpleNamespace

    from lab import status
    st = lab_state.State(phase="provisioned", provider="docker", interface=unrouted.bridge)
    cluster = {"members": [{"name": "pg1", "host": "198.51.100.201", "role": "leader", "state": "running",
                            "timeline": 1}, {"name": "pg2", "host": "198.51.100.202", "role": "replica",
                                             "state": "streaming", "timeline": 1, "lag": 0}]}
    asked = []

    def http(topo, address, port, path, **kw):
        asked.append((address, port, path))
        return (200, cluster) if address.endswith(".202") or address.endswith(".204") else (0, None)
    monkeypatch.setattr(status.remote, "http", http)
    sec = status.patroni(unrouted, st)
    assert [r[1] for r in sec.rows] == ["pg1", "pg2", "pg1", "pg2"]
    assert asked[0] == ("198.51.100.201", 8008, "/cluster")   # tried members in order

    def connect(topo, node):
        held = {"node1": " 198.51.100.210/24", "node3": " 198.51.100.211/24"}.get(node, "")
        return SimpleNamespace(run=lambda *a, **kw: SimpleNamespace(stdout=f"2: eth1 inet{held} brd"))
    monkeypatch.setattr(status.remote, "connect", connect)
    rows = {r[0]: r[2] for r in status.vips(unrouted, st).rows}
    assert rows == {"read_write": "node1", "read_only": "node3", "haproxy": "nobody"}
    assert status.patroni(unrouted, lab_state.State(phase="created")) is None
