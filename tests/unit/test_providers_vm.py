"""The pulumi and hosts providers without VMs: preflight, inventory, routes, OS detection."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

import invoke_cli
from labcore import topology
from lab.providers import ProviderError
from lab.providers import hosts as hosts_mod
from lab.providers import pulumi as pulumi_mod

ROOT = Path(__file__).resolve().parents[2]
TOPO = topology.load(topology.DEFAULT_PATH)


def fake_cli(tmp_path: Path, plugins: list[dict]) -> Path:
    """A `pulumi` on PATH that answers `plugin ls --json` only."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    cli = bin_dir / "pulumi"
    cli.write_text("#!/bin/sh\n"
                   f"[ \"$1 $2 $3\" = 'plugin ls --json' ] && echo '{__import__('json').dumps(plugins)}' && exit 0\n"
                   "echo unexpected call: \"$@\" >&2; exit 3\n")
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    return bin_dir


REAL_SPECIFIC_ROUTE = pulumi_mod.specific_route
LIBVIRT_PLUGIN = [{"name": "libvirt", "kind": "resource", "version": "0.5.4"}]


# --- pulumi provider preflight ----------------------------------------------------

def test_pulumi_without_cli_says_what_to_install_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    with pytest.raises(ProviderError, match=r"Pulumi CLI is not on PATH: install the Pulumi CLI .*pulumi plugin install resource libvirt v0\.5\.4"):
        pulumi_mod.PulumiProvider().preflight(TOPO)
    assert not (tmp_path / "lab").exists()


def test_pulumi_without_libvirt_plugin_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_cli(tmp_path, [])}:/usr/bin:/bin")
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    with pytest.raises(ProviderError, match=r"libvirt provider plugin is not installed: run `pulumi plugin install resource libvirt v0\.5\.4`"):
        pulumi_mod.PulumiProvider().preflight(TOPO)
    assert not (tmp_path / "lab").exists()


@pytest.fixture
def with_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_cli(tmp_path, LIBVIRT_PLUGIN)}:/usr/bin:/bin")
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setattr(pulumi_mod, "ROOT", tmp_path)          # Pulumi.<stack>.yaml lives here
    monkeypatch.setattr(pulumi_mod, "LIBVIRT_SOCKETS", (tmp_path,))  # "libvirtd is running"
    monkeypatch.setattr(pulumi_mod, "specific_route", lambda a: None)
    return tmp_path


def write_stack(root: Path, **config) -> None:
    (root / f"Pulumi.{TOPO.name}.yaml").write_text(
        yaml.safe_dump({"config": {f"patroni-lab:{k}": v for k, v in config.items()}}))


def test_pulumi_preflight_passes_with_cli_plugin_and_defaults(with_cli):
    p = pulumi_mod.PulumiProvider()
    p.preflight(TOPO)
    assert p.interface == TOPO.bridge == p.expected_interface(TOPO)
    assert p.program_settings.platform == "el7" and "CentOS-7" in p.program_settings.image
    assert not (with_cli / "lab").exists()


def test_pulumi_preflight_reads_the_stack_file_and_rejects_bad_settings(with_cli):
    write_stack(with_cli, image="")
    with pytest.raises(ProviderError, match="pulumi: patroni-lab:image is empty"):
        pulumi_mod.PulumiProvider().preflight(TOPO)
    write_stack(with_cli, memory=4096, cpus=4, platform="debian12")
    p = pulumi_mod.PulumiProvider()
    p.preflight(TOPO)
    assert (p.program_settings.memory, p.program_settings.cpus) == (4096, 4)
    assert p.program_settings.image == pulumi_mod.program.DEFAULT_IMAGES["debian12"]


def test_pulumi_says_when_libvirtd_is_not_running(with_cli, monkeypatch):
    monkeypatch.setattr(pulumi_mod, "LIBVIRT_SOCKETS", (with_cli / "no-such-socket",))
    with pytest.raises(ProviderError, match="libvirtd is not running .*install libvirt-daemon-system"):
        pulumi_mod.PulumiProvider().preflight(TOPO)


def test_pulumi_refuses_a_subnet_already_used_by_another_interface(with_cli, monkeypatch):
    monkeypatch.setattr(pulumi_mod, "specific_route", lambda a: {"dst": "192.168.234.0/24", "dev": "eth0"})
    with pytest.raises(ProviderError, match=r"192\.168\.234\.0/24 is already reached via eth0"):
        pulumi_mod.PulumiProvider().preflight(TOPO)


def test_pulumi_remote_hypervisor_needs_a_route_not_the_default(with_cli, monkeypatch):
    write_stack(with_cli, libvirtUri="qemu+ssh://admin@kvm1/system")
    with pytest.raises(ProviderError, match=r"needs a route to 192\.168\.234\.0/24 via that hypervisor"):
        pulumi_mod.PulumiProvider().preflight(TOPO)
    monkeypatch.setattr(hosts_mod, "routes_to", lambda a: [
        {"dst": "default", "gateway": "10.0.0.1", "dev": "eth0"},
        {"dst": "192.168.0.0/16", "gateway": "10.0.0.9", "dev": "eth1"},
        {"dst": "192.168.234.0/24", "gateway": "10.0.0.7", "dev": "wg0"}])
    monkeypatch.setattr(pulumi_mod, "specific_route", REAL_SPECIFIC_ROUTE)
    p = pulumi_mod.PulumiProvider()
    p.preflight(TOPO)
    assert p.interface == "wg0"


def test_specific_route_ignores_the_default_route(monkeypatch):
    monkeypatch.setattr(hosts_mod, "routes_to", lambda a: [{"dst": "default", "dev": "eth0"}])
    assert hosts_mod.specific_route("192.168.234.201") is None
    monkeypatch.setattr(hosts_mod, "routes_to", lambda a: [
        {"dst": "default", "dev": "eth0"}, {"dst": "192.168.234.201", "dev": "tun0"},
        {"dst": "192.168.234.0/24", "dev": "br0"}])
    assert hosts_mod.specific_route("192.168.234.201")["dev"] == "tun0"


def test_pulumi_destroy_without_state_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    said = []
    pulumi_mod.PulumiProvider().destroy(TOPO, said.append)
    assert said == ["pulumi: no stack state under LAB_DIR; nothing to destroy"]


def test_invoke_up_with_pulumi_but_no_cli_fails_cleanly(tmp_path, monkeypatch, capfd, unit_guard):
    lab_dir = tmp_path / "lab"
    topo = tmp_path / "topology.yml"          # the lab's topology moved to TEST-NET-2, under its own name
    topo.write_text(topology.DEFAULT_PATH.read_text().replace("192.168.234.", "198.51.100.")
                    .replace("name: patroni-lab", "name: plab-nopulumi"))
    monkeypatch.setenv("LAB_DIR", str(lab_dir))
    monkeypatch.setenv("LAB_TOPOLOGY", str(topo))
    # every directory holding a pulumi (the unit tier's stub too) left out; the other stubs stay
    monkeypatch.setenv("PATH", os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                                               if d and not Path(d, "pulumi").exists()))
    stack_files = set(ROOT.glob("Pulumi.*.yaml"))
    r = invoke_cli.in_process(["up", "--provider", "pulumi"], monkeypatch, capfd)
    out = r.out + r.err
    assert r.code != 0, out
    assert "Pulumi CLI is not on PATH" in out and "pulumi plugin install resource libvirt" in out, out
    assert len([l for l in out.splitlines() if "Pulumi CLI" in l]) == 1, out
    assert not lab_dir.exists(), list(lab_dir.iterdir())
    assert set(ROOT.glob("Pulumi.*.yaml")) == stack_files, "a stack file appeared"
    assert unit_guard.logged() == []          # nor asked Docker, libvirt or the network anything


# --- hosts provider: inventory ------------------------------------------------------

@pytest.fixture
def key(tmp_path) -> Path:
    k = tmp_path / "id_test"
    k.write_text("not really a key\n")
    return k


def inventory(tmp_path: Path, doc: dict) -> Path:
    p = tmp_path / "hosts.yml"
    p.write_text(yaml.safe_dump(doc))
    return p


def good_doc(key: Path) -> dict:
    return {"defaults": {"user": "admin", "key": str(key)},
            "hosts": {n.name: {"address": n.address} for n in TOPO.nodes}}


def test_inventory_loads_with_defaults_and_overrides(tmp_path, key):
    doc = good_doc(key)
    doc["hosts"]["node4"] = {"address": TOPO.node("node4").address, "user": "centos", "port": 2222,
                             "key": key.name}          # relative to the inventory file
    entries = hosts_mod.load_inventory(inventory(tmp_path, doc), TOPO)
    assert [e.node for e in entries.values()] == TOPO.names
    assert entries["node1"].user == "admin" and entries["node1"].port == 22
    assert (entries["node4"].user, entries["node4"].port, entries["node4"].key) == ("centos", 2222, str(key))


@pytest.mark.parametrize("change,message", [
    (lambda d: d["hosts"].pop("node3"), r"hosts\.yml: hosts: node3 missing"),
    (lambda d: d["hosts"].update(node9={"address": "192.168.234.209"}), r"hosts\.node9: not a node of the topology"),
    (lambda d: d["hosts"]["node2"].update(address="10.1.2.3"),
     r"hosts\.node2\.address: 10\.1\.2\.3 is not node2's topology address 192\.168\.234\.202"),
    (lambda d: d["hosts"]["node2"].update(address="192.168.234.203"), r"hosts\.node2\.address: 192\.168\.234\.203 is not node2's"),
    (lambda d: d["hosts"]["node1"].update(port=70000), r"hosts\.node1\.port: 70000 must be a port number"),
    (lambda d: d["hosts"]["node1"].update(key="/nonexistent/key"), r"hosts\.node1\.key: /nonexistent/key is not a readable"),
    (lambda d: d["hosts"]["node1"].update(pasword="x"), r"hosts\.node1\.pasword: unknown key"),
    (lambda d: d["defaults"].pop("user"), r"hosts\.node1\.user: missing \(and no default\)"),
    (lambda d: d.update(extra=1), r"hosts\.yml: extra: unknown key"),
])
def test_bad_inventory_names_what_is_wrong(tmp_path, key, change, message):
    doc = good_doc(key)
    change(doc)
    with pytest.raises(ProviderError, match=message):
        hosts_mod.load_inventory(inventory(tmp_path, doc), TOPO)


def test_missing_inventory_says_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_INVENTORY", raising=False)
    path = hosts_mod.inventory_path(TOPO)
    assert path == TOPO.path.with_name("hosts.yml")
    monkeypatch.setenv("LAB_INVENTORY", str(tmp_path / "nope.yml"))
    with pytest.raises(ProviderError, match=r"inventory .*nope\.yml cannot be read .*examples/hosts\.example\.yml"):
        hosts_mod.HostsProvider().preflight(TOPO)
    assert hosts_mod.inventory_path(TOPO, {"inventory": "/x/inv.yml"}) == Path("/x/inv.yml")


def test_example_inventory_matches_the_default_topology(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("x")
    entries = hosts_mod.load_inventory(ROOT / "examples" / "hosts.example.yml", TOPO)
    assert {e.address for e in entries.values()} == {n.address for n in TOPO.nodes}


# --- hosts provider: routes, OS, destroy -------------------------------------------------

def entries_for(key: Path) -> dict:
    return {n.name: hosts_mod.Entry(n.name, n.address, "admin", str(key)) for n in TOPO.nodes}


@pytest.fixture
def routed(monkeypatch):
    """Every lab address has a specific route (a connected network)."""
    monkeypatch.setattr(hosts_mod, "specific_route", lambda a: {"dst": "192.168.234.0/24"})


def test_all_hosts_must_share_one_interface(monkeypatch, key, routed):
    monkeypatch.setattr(hosts_mod, "route", lambda a: {"dev": "eth1" if a.endswith(".204") else "eth0"})
    with pytest.raises(ProviderError, match=r"different interfaces \(node1, node2, node3 via eth0; node4 via eth1\)"):
        hosts_mod.lab_interface(entries_for(key))
    monkeypatch.setattr(hosts_mod, "route", lambda a: {"dev": "eth0"})
    assert hosts_mod.lab_interface(entries_for(key)) == "eth0"


def test_a_host_without_route_or_the_host_itself_is_refused(monkeypatch, key, routed):
    monkeypatch.setattr(hosts_mod, "route", lambda a: {})
    with pytest.raises(ProviderError, match=r"node1 \(192\.168\.234\.201\) has no route"):
        hosts_mod.lab_interface(entries_for(key))
    monkeypatch.setattr(hosts_mod, "route", lambda a: {"dev": "lo", "type": "local"})
    with pytest.raises(ProviderError, match="is this host itself"):
        hosts_mod.lab_interface(entries_for(key))


def test_hosts_behind_the_default_route_are_refused(monkeypatch, key):
    monkeypatch.setattr(hosts_mod, "route", lambda a: {"dev": "eth0", "gateway": "10.0.0.1"})
    monkeypatch.setattr(hosts_mod, "routes_to", lambda a: [{"dst": "default", "gateway": "10.0.0.1", "dev": "eth0"}])
    with pytest.raises(ProviderError, match=r"node1 \(192\.168\.234\.201\) is reached only through the default route"):
        hosts_mod.lab_interface(entries_for(key))


def test_route_reads_the_real_routing_table():
    # No packet is sent; loopback always routes via lo.
    assert hosts_mod.route("127.0.0.1").get("dev") == "lo"


@pytest.mark.parametrize("text,platform", [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n', "debian12"),
    ('NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n', "el7"),
    ('NAME="Red Hat Enterprise Linux Server"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="7.9"\n', "el7"),
    ('NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n', None),
    ('NAME="Debian GNU/Linux"\nVERSION_ID="11"\nID=debian\n', None),
    ('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.9"\n', None),
])
def test_platform_from_os_release(text, platform):
    assert hosts_mod.platform_of(hosts_mod.parse_os_release(text)) == platform


def test_check_host_refuses_an_address_the_guard_does_not_route_via_the_lab(monkeypatch, key):
    from labcore.guard import GuardError
    monkeypatch.setattr("labcore.guard.route_interface", lambda a: "eth9")
    e = hosts_mod.Entry("node1", TOPO.node("node1").address, "admin", str(key))
    with pytest.raises(GuardError, match="routes it via eth9, not the lab network eth0"):
        hosts_mod.check_host(e, TOPO, "eth0")


def test_mixed_platforms_are_refused(monkeypatch, key):
    p = hosts_mod.HostsProvider()
    p.entries, p.interface = entries_for(key), "eth0"
    monkeypatch.setattr(hosts_mod, "check_host", lambda e, t, i: "el7" if e.node == "node4" else "debian12")
    with pytest.raises(ProviderError, match="different platforms .*node4=el7"):
        p.create(TOPO, lambda s: None)
    monkeypatch.setattr(hosts_mod, "check_host", lambda e, t, i: "el7")
    m = p.create(TOPO, lambda s: None)
    assert m.platform == "el7" and m.interface == "eth0"
    assert {n: h.hostname for n, h in m.hosts.items()} == {n.name: n.address for n in TOPO.nodes}


def test_hosts_destroy_never_destroys_and_says_so():
    said = []
    hosts_mod.HostsProvider().destroy(TOPO, said.append)
    assert len(said) == 1 and said[0].startswith("hosts: nothing destroyed; the 4 existing machines")


def test_registry_finds_both_providers():
    from lab import providers
    assert providers.get("hosts").name == "hosts"
    assert providers.get("pulumi").name == "pulumi"


def test_pulumi_create_drives_the_stack_in_lab_dir_and_maps_outputs(with_cli, monkeypatch):
    """The Automation API glue, with the stack faked: backend, env, key, outputs -> Machines."""
    from pulumi import automation as auto

    seen = {}

    class FakeStack:
        def up(self, on_output):
            on_output("Updating (patroni-lab)\n")
            return type("R", (), {"outputs": {
                "addresses": auto.OutputValue({n.name: n.address for n in TOPO.nodes}, False),
                "platform": auto.OutputValue("el7", False),
                "sshUser": auto.OutputValue("lab", False)}})()

    def fake_create_or_select(stack_name, work_dir, opts):
        seen.update(stack=stack_name, work_dir=work_dir, env=opts.env_vars)
        return FakeStack()

    monkeypatch.setattr(auto, "create_or_select_stack", fake_create_or_select)
    monkeypatch.setattr(pulumi_mod.PulumiProvider, "_wait_until_booted", lambda self, t, m, r, booted: None)
    monkeypatch.setattr(pulumi_mod, "stack_config", lambda topo: {"platform": "el7"})   # the article's cloud image
    said = []
    m = pulumi_mod.PulumiProvider().create(TOPO, said.append)
    lab = with_cli / "lab"
    assert seen["stack"] == TOPO.name and seen["work_dir"] == str(with_cli)
    assert seen["env"]["PULUMI_BACKEND_URL"] == f"file://{lab}/pulumi/state"
    assert seen["env"]["LAB_TOPOLOGY"] == str(TOPO.path) and seen["env"]["LAB_DIR"] == str(lab)
    assert (lab / "pulumi" / "id_ed25519.pub").read_text().startswith("ssh-ed25519 ")
    assert m.platform == "el7" and m.interface == TOPO.bridge
    assert {n: (h.hostname, h.user, h.key) for n, h in m.hosts.items()} == {
        n.name: (n.address, "lab", str(lab / "pulumi" / "id_ed25519")) for n in TOPO.nodes}
    assert "Updating (patroni-lab)" in said


def test_pulumi_create_gives_the_program_the_labs_own_image_and_uses_its_key(with_cli, monkeypatch):
    """No image in the stack: the lab's own Debian 12 image, as the libvirt path; under TCG the waits stretch."""
    from pulumi import automation as auto
    from lab.providers import libvirt, vagrant

    seen: dict = {}

    class FakeStack:
        def set_all_config(self, config):
            seen["config"] = {k: v.value for k, v in config.items()}

        def up(self, on_output):
            return type("R", (), {"outputs": {
                "addresses": auto.OutputValue({n.name: n.address for n in TOPO.nodes}, False),
                "platform": auto.OutputValue("debian12", False),
                "sshUser": auto.OutputValue("vagrant", False)}})()

    monkeypatch.setattr(auto, "create_or_select_stack", lambda stack_name, work_dir, opts: FakeStack())
    monkeypatch.setattr(pulumi_mod.PulumiProvider, "_wait_until_booted",
                        lambda self, t, m, r, booted: seen.update(booted=booted))
    monkeypatch.setattr(pulumi_mod, "stack_config", lambda topo: {})
    monkeypatch.setattr(pulumi_mod, "own_image_config", lambda topo, report: {"domainType": "qemu", "kernel": "/k"})
    m = pulumi_mod.PulumiProvider().create(TOPO, lambda line: None)
    assert seen["config"] == {"patroni-lab:domainType": "qemu", "patroni-lab:kernel": "/k"}
    assert seen["booted"] == "true", "the lab's image has no cloud-init to wait for"
    assert {h.key for h in m.hosts.values()} == {str(vagrant.lab_key())} and m.timeout_scale == libvirt.TCG_SCALE


def test_down_after_hosts_asks_only_the_hosts_provider(tmp_path, monkeypatch):
    """`invoke down` of a hosts lab must not let an auto-detected provider sweep same-named machines."""
    from lab import lifecycle, providers
    from labcore import state as lab_state

    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    lab_state.save(lab_state.State(phase="provisioned", provider="hosts", interface="eth0"))
    asked = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def destroy(self, topo, report):
            asked.append(self.name)

    monkeypatch.setattr(providers, "get", lambda name, settings=None: Recorder(name))
    lifecycle.down(TOPO, None, {"provider": "docker"}, lambda m: None)
    assert asked == ["hosts"]
    assert not lab_state.path().exists()
    lab_state.save(lab_state.State(phase="provisioned", provider="hosts", interface="eth0"))
    lifecycle.down(TOPO, "docker", {}, lambda m: None)       # asked explicitly: both
    assert asked == ["hosts", "hosts", "docker"]
