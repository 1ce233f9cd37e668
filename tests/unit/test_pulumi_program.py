"""The Pulumi program under Pulumi's mocks: which resources it declares, with what.

No Pulumi CLI, plugin or libvirt is needed: ``set_mocks`` answers every
resource registration with its inputs, which the tests read back.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import shutil
import subprocess
from pathlib import Path

import pulumi
import pytest
import yaml

from labcore import topology
from lab.providers import libvirt_layout as layout
from lab.providers import vmimage


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, token: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == token]


# set_mocks must run before the program module creates any resource.
MOCKS = RecordingMocks()
pulumi.runtime.set_mocks(MOCKS, project="patroni-lab", stack="test", preview=False)

from lab.providers import pulumi_program as program  # noqa: E402

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly lab@test"
TOPO = topology.load(topology.DEFAULT_PATH)


def settings(**kw) -> program.Settings:
    return program.Settings(ssh_public_key=KEY, **kw)


@pulumi.runtime.test
def test_four_domains_named_after_the_topology():
    MOCKS.resources.clear()
    out = program.build(TOPO, settings())

    def check(names):
        # named as Vagrant names the libvirt path's domains
        assert sorted(names) == sorted(f"{TOPO.name}_{n.name}" for n in TOPO.nodes)
        domains = MOCKS.of_type("libvirt:index/domain:Domain")
        assert len(domains) == len(TOPO.nodes) == 4
        for d in domains:
            node = TOPO.node(d.inputs["name"].removeprefix(f"{TOPO.name}_"))
            nic = d.inputs["networkInterfaces"][0]
            assert nic["addresses"] == [node.address]
            assert nic["mac"] == program.mac_for(node.address)
            assert d.inputs["memory"] == 1024 and d.inputs["vcpu"] == 1
    return pulumi.Output.all(*[d.name for d in out["domains"].values()]).apply(check)


@pulumi.runtime.test
def test_network_covers_the_topology_subnet_on_its_bridge():
    MOCKS.resources.clear()
    out = program.build(TOPO, settings())

    def check(args):
        addresses, bridge = args
        assert addresses == [str(TOPO.subnet)]
        assert bridge == TOPO.bridge
        net = MOCKS.of_type("libvirt:index/network:Network")[0].inputs
        # isolated and without DNS, as the libvirt path's network: DHCP serves the domains' reservations
        assert net["dhcp"] == {"enabled": True} and net["dns"] == {"enabled": False} and net["mode"] == "none"
        # the bridge takes the subnet's first address: the host side the guard checks
        assert str(next(ipaddress.IPv4Network(addresses[0]).hosts())) == TOPO.gateway
    return pulumi.Output.all(out["network"].addresses, out["network"].bridge).apply(check)


@pulumi.runtime.test
def test_every_domain_gets_the_i6300esb_watchdog():
    MOCKS.resources.clear()
    out = program.build(TOPO, settings())

    def check(xmls):
        assert len(xmls) == 4
        for xml in xmls:
            assert '<watchdog model="i6300esb" action="reset"/>' in xml["xslt"]
    return pulumi.Output.all(*[d.xml for d in out["domains"].values()]).apply(check)


@pytest.mark.skipif(not shutil.which("xsltproc"), reason="xsltproc not installed")
def test_watchdog_xslt_really_adds_the_device_once(tmp_path):
    # Apply the stylesheet as libvirt would, to a minimal domain XML.
    (tmp_path / "w.xsl").write_text(program.WATCHDOG_XSLT)
    (tmp_path / "d.xml").write_text("<domain type='kvm'><name>x</name><devices><disk/></devices></domain>")
    out = subprocess.run(["xsltproc", "w.xsl", "d.xml"], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    assert out.count('<watchdog model="i6300esb" action="reset"/>') == 1 and "<disk/>" in out
    (tmp_path / "d2.xml").write_text(out)
    again = subprocess.run(["xsltproc", "w.xsl", "d2.xml"], cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout
    assert again.count("<watchdog") == 1


@pulumi.runtime.test
def test_cloud_init_per_node_sets_host_user_key_address_and_el7_vault():
    MOCKS.resources.clear()
    out = program.build(TOPO, settings())

    def check(_):
        disks = {r.inputs["name"]: r.inputs for r in MOCKS.of_type("libvirt:index/cloudInitDisk:CloudInitDisk")}
        assert len(disks) == 4
        for n in TOPO.nodes:
            ci = disks[f"{TOPO.name}_{n.name}-cloudinit.iso"]
            assert ci["userData"].startswith("#cloud-config\n")
            ud = yaml.safe_load(ci["userData"])
            assert ud["hostname"] == n.name
            user = ud["users"][0]
            assert user["name"] == "lab" and user["ssh_authorized_keys"] == [KEY]
            assert user["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
            repo = ud["write_files"][0]
            assert repo["path"] == "/etc/yum.repos.d/CentOS-Base.repo"
            lines = repo["content"].splitlines()
            assert all(l.startswith("#") for l in lines if "mirrorlist" in l)
            assert [l for l in lines if l.startswith("baseurl=")] == [
                f"baseurl=http://vault.centos.org/7.9.2009/{r}/$basearch/" for r in ("os", "updates", "extras")]
            assert "vault.centos.org" in ud["bootcmd"][0]
            net = yaml.safe_load(ci["networkConfig"])["config"][0]
            assert net["mac_address"] == program.mac_for(n.address)
            assert net["subnets"][0]["address"] == f"{n.address}/{TOPO.subnet.prefixlen}"
            assert net["subnets"][0]["gateway"] == TOPO.gateway
            assert yaml.safe_load(ci["metaData"])["local-hostname"] == n.name
    return pulumi.Output.all(*[c.id for c in out["cloudinits"].values()]).apply(check)


@pulumi.runtime.test
def test_debian_image_skips_the_centos_repo_fix_and_uses_sudo_group():
    MOCKS.resources.clear()
    out = program.build(TOPO, settings(platform="debian12", image=program.DEFAULT_IMAGES["debian12"]))

    def check(_):
        for r in MOCKS.of_type("libvirt:index/cloudInitDisk:CloudInitDisk"):
            ud = yaml.safe_load(r.inputs["userData"])
            assert "write_files" not in ud and "bootcmd" not in ud
            assert ud["users"][0]["groups"] == "sudo"
        base = MOCKS.of_type("libvirt:index/volume:Volume")[0].inputs
        assert base["source"] == program.DEFAULT_IMAGES["debian12"]
    return out["base"].id.apply(check)


@pulumi.runtime.test
def test_node_volumes_are_copies_of_the_base_image_and_the_provider_uses_the_uri():
    MOCKS.resources.clear()
    out = program.build(TOPO, settings(uri="qemu+ssh://admin@hypervisor/system", memory=4096, cpus=4))

    def check(_):
        vols = {r.inputs["name"]: r.inputs for r in MOCKS.of_type("libvirt:index/volume:Volume")}
        assert vols[f"{TOPO.name}-image.qcow2"]["source"] == program.DEFAULT_IMAGES["el7"]
        for n in TOPO.nodes:
            v = vols[f"{TOPO.name}_{n.name}.img"]
            assert v["baseVolumeId"] == f"{TOPO.name}-image-id" and v["size"] == 20 * 1024 ** 3
        prov = MOCKS.of_type("pulumi:providers:libvirt")[0].inputs
        assert prov["uri"] == "qemu+ssh://admin@hypervisor/system"
        assert {d.inputs["memory"] for d in MOCKS.of_type("libvirt:index/domain:Domain")} == {4096}
    return pulumi.Output.all(*[d.id for d in out["domains"].values()]).apply(check)


# --- the same lab as the libvirt path (lab.providers.libvirt_layout) ----------------------------------

LIVE = Path(__file__).parent / "data" / "libvirt"   # virsh dumpxml of the VM tier's lab, 2026-12-06 (TCG)


def own_image(tmp_path: Path, **kw) -> program.Settings:
    """The settings the pulumi provider gives the program for the lab's own Debian 12 image."""
    for f in ("vmlinuz", "initrd.img", "box.img"):
        (tmp_path / f).write_text("")
    return settings(platform="debian12", image=str(tmp_path / "box.img"), kernel=str(tmp_path / "vmlinuz"),
                    initrd=str(tmp_path / "initrd.img"), digest="8f84b14068c0", cmdline=vmimage.CMDLINE,
                    console_dir="/tmp/vmrun/.lab/console", **kw)


def declared(out) -> layout.Layout:
    """The program's resources read back as the layout: what `pulumi up` would create."""
    pool = MOCKS.of_type("libvirt:index/pool:Pool")[0].inputs
    net = MOCKS.of_type("libvirt:index/network:Network")[0].inputs
    vols = {r.name: r.inputs for r in MOCKS.of_type("libvirt:index/volume:Volume")}
    by_id = {f"{name}-id": v["name"] for name, v in vols.items()}
    domains = []
    for d in (r.inputs for r in MOCKS.of_type("libvirt:index/domain:Domain")):
        nic = d["networkInterfaces"][0]
        cmdline = " ".join(v if k == "_" else f"{k}={v}" for c in d.get("cmdlines", []) for k, v in c.items())
        console = d["consoles"][0]
        xslt = d["xml"]["xslt"]
        cpu = layout.TCG_CPU if f"<model fallback=\"forbid\">{layout.TCG_CPU}</model>" in xslt else d["cpu"]["mode"]
        disk = by_id[d["disks"][0]["volumeId"]]
        base = [v for v in vols.values() if v["name"] == disk][0].get("baseVolumeId")
        domains.append(layout.DomainLayout(
            name=d["name"], node=d["name"].removeprefix(f"{TOPO.name}_"), domain_type=d["type"], vcpu=d["vcpu"],
            memory_mib=d["memory"], cpu=cpu, kernel=by_id.get(d.get("kernel")), initrd=by_id.get(d.get("initrd")),
            cmdline=cmdline or None, disk=disk, backing=layout.IMAGE if base == f"{TOPO.name}-image-id" else "none",
            network=TOPO.name if nic["networkId"] == f"{TOPO.name}-net-id" else nic["networkId"], mac=nic["mac"],
            watchdog=layout.WATCHDOG if '<watchdog model="i6300esb" action="reset"/>' in xslt else ("", ""),
            serial_file=console.get("sourcePath") if console["type"] == "file" else None))
    domains.sort(key=lambda d: TOPO.names.index(d.node))     # resources register in no fixed order
    hosts = tuple((d.mac, d.node, TOPO.node(d.node).address) for d in domains)   # DHCP hosts from the NICs
    prefix = ipaddress.IPv4Network(net["addresses"][0])
    network = layout.NetworkLayout(name=net["name"], bridge=net["bridge"], address=str(next(prefix.hosts())),
                                   netmask=str(prefix.netmask), forward=None if net["mode"] == "none" else net["mode"],
                                   dns=net["dns"]["enabled"], dhcp_hosts=hosts)
    return layout.Layout(pool=pool["name"], pool_path=pool["path"], network=network, domains=tuple(domains))


def live_layout() -> layout.Layout:
    files = {"pool-dumpxml": "pool.xml", "net-dumpxml": "network.xml"}

    def virsh(*args):
        if args[0] == "list":
            out = "\n".join(f"{TOPO.name}_{n}" for n in TOPO.names)
        elif args[0] == "dumpxml":
            out = (LIVE / f"domain-{args[1].removeprefix(TOPO.name + '_')}.xml").read_text()
        else:
            out = (LIVE / files[args[0]]).read_text()
        return subprocess.CompletedProcess(args, 0, out, "")
    return layout.live(TOPO, virsh)


def test_the_vm_tiers_lab_is_the_layout_and_a_changed_lab_is_not():
    expected = layout.layout(TOPO, domain_type="qemu", cpus=1, memory_mib=1024, digest="8f84b14068c0",
                             cmdline=vmimage.CMDLINE, console_dir=Path("/tmp/vmrun/.lab/console"))
    assert layout.differences(expected, live_layout()) == []
    kvm = dataclasses.replace(expected, domains=tuple(dataclasses.replace(d, domain_type="kvm", cpu=layout.KVM_CPU)
                                                     for d in expected.domains))
    found = layout.differences(kvm, live_layout())
    assert f"{TOPO.name}_node1 cpu: host-passthrough != qemu64" in found and len(found) == 8


@pulumi.runtime.test
def test_the_program_declares_the_lab_the_libvirt_path_made(tmp_path):
    MOCKS.resources.clear()
    out = program.build(TOPO, own_image(tmp_path, domain_type="qemu"))

    def check(_):
        assert layout.differences(live_layout(), declared(out)) == []
        assert not MOCKS.of_type("libvirt:index/cloudInitDisk:CloudInitDisk"), "the lab's image needs no cloud-init"
    return pulumi.Output.all(*[d.id for d in out["domains"].values()]).apply(check)


@pulumi.runtime.test
def test_the_program_under_kvm_differs_from_the_tcg_lab_only_in_type_and_cpu(tmp_path):
    MOCKS.resources.clear()
    out = program.build(TOPO, own_image(tmp_path, domain_type="kvm"))

    def check(_):
        found = layout.differences(live_layout(), declared(out))
        assert sorted({line.split(" ", 1)[1].split(":")[0] for line in found}) == ["cpu", "domain_type"], found
    return pulumi.Output.all(*[d.id for d in out["domains"].values()]).apply(check)


def test_the_provider_gives_the_program_the_labs_own_image_unless_the_stack_names_another():
    from lab.providers import pulumi as provider
    assert provider.own_image_wanted({}) and provider.own_image_wanted({"platform": "debian12"})
    assert not provider.own_image_wanted({"platform": "el7"})
    assert not provider.own_image_wanted({"image": "/srv/images/debian-12-genericcloud-amd64.qcow2"})


def test_kernel_without_its_digest_is_refused(tmp_path):
    with pytest.raises(program.ProgramError, match="kernel needs digest and cmdline"):
        dataclasses.replace(own_image(tmp_path), digest="").validate()


# --- wrong input fails before anything is declared ----------------------------------

def test_address_outside_the_network_is_refused_before_any_resource():
    MOCKS.resources.clear()
    stray = dataclasses.replace(TOPO.nodes[1], address="10.9.8.7")
    bad = dataclasses.replace(TOPO, nodes=(TOPO.nodes[0], stray) + TOPO.nodes[2:])
    with pytest.raises(program.ProgramError, match=r"node2: address 10\.9\.8\.7 is outside the lab network 192\.168\.234\.0/24"):
        program.build(bad, settings())
    assert MOCKS.resources == []


def test_address_outside_the_network_in_the_topology_file_fails_to_load(tmp_path, monkeypatch):
    data = yaml.safe_load(topology.DEFAULT_PATH.read_text())
    data["nodes"][2]["address"] = "10.0.0.3"
    (tmp_path / "t.yml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("LAB_TOPOLOGY", str(tmp_path / "t.yml"))
    with pytest.raises(topology.TopologyError, match="outside the lab subnet"):
        program.main()


class FakeConfig(dict):
    """What pulumi.Config.get returns: strings or None."""


def test_empty_image_setting_is_refused():
    with pytest.raises(program.ProgramError, match=r"patroni-lab:image is empty"):
        program.settings_from(FakeConfig(image="", sshPublicKey=KEY))


def test_platform_without_a_default_image_needs_the_image_setting():
    with pytest.raises(program.ProgramError, match=r"platform: 'el8' has no default image; set patroni-lab:image"):
        program.settings_from(FakeConfig(platform="el8", sshPublicKey=KEY))


def test_image_path_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(program.ProgramError, match="neither an http\\(s\\) URL nor an existing file"):
        program.settings_from(FakeConfig(image=str(tmp_path / "missing.qcow2"), sshPublicKey=KEY))


@pytest.mark.parametrize("key,value,message", [
    ("memory", "lots", "memory: 'lots' is not a whole number"),
    ("memory", "128", "memory: 128 must be MiB"),
    ("cpus", "0", "cpus: 0 must be between"),
    ("libvirtUri", "vbox:///session", "libvirtUri: 'vbox:///session' must start with"),
    ("sshUser", "root", "sshUser: 'root'"),
    ("sshPublicKey", "hello", "sshPublicKey: missing or not an OpenSSH public key"),
])
def test_bad_settings_name_themselves(key, value, message):
    cfg = FakeConfig(sshPublicKey=KEY)
    cfg[key] = value
    with pytest.raises(program.ProgramError, match=message.replace("(", r"\(")):
        program.settings_from(cfg)


def test_missing_key_file_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))
    with pytest.raises(program.ProgramError, match="sshPublicKey is not set and .*id_ed25519.pub cannot be read"):
        program.settings_from(FakeConfig())
    (tmp_path / "pulumi").mkdir()
    (tmp_path / "pulumi" / "id_ed25519.pub").write_text(KEY + "\n")
    s = program.settings_from(FakeConfig(libvirtUri="qemu+ssh://me@kvm1/system"))
    assert s.ssh_public_key == KEY and s.is_remote and s.image == program.DEFAULT_IMAGES["el7"]
    assert not program.Settings().is_remote


def test_other_instances_get_their_own_names_and_subnet(tmp_path):
    data = yaml.safe_load(topology.DEFAULT_PATH.read_text())
    text = yaml.safe_dump(data).replace("192.168.234.", "192.168.237.").replace("patroni-lab", "patroni-lab-d")
    other = topology.parse(yaml.safe_load(text.replace("plab0", "plab3")), tmp_path / "d.yml")
    ci = yaml.safe_load(program.network_config(other, other.nodes[0].address))["config"][0]
    assert ci["subnets"][0]["gateway"] == "192.168.237.1"
    assert program.mac_for(other.nodes[0].address) == "52:54:00:a8:ed:c9"


def test_project_file_names_the_config_namespace_and_a_python_runtime():
    root = topology.ROOT
    data = yaml.safe_load((root / "Pulumi.yaml").read_text())
    assert set(data) <= {"name", "description", "runtime"}
    assert data["name"] == program.PROJECT
    assert data["runtime"]["name"] == "python" and data["runtime"]["options"]["virtualenv"] == ".venv"
    main = (root / "__main__.py").read_text()
    assert "from lab.providers.pulumi_program import main" in main and "\nmain()\n" in main


# --- cloud-init's own tools read what the program writes ------------------------------

CLOUD_INIT = shutil.which("cloud-init")
needs_cloud_init = pytest.mark.skipif(not CLOUD_INIT, reason="cloud-init not installed (apt-get install cloud-init)")


@needs_cloud_init
@pytest.mark.parametrize("platform", ["el7", "debian12"])
def test_user_data_passes_cloud_inits_schema(tmp_path, platform):
    for n in TOPO.nodes[::3]:             # nodes differ only in their names: first and last suffice
        f = tmp_path / f"{n.name}.yml"
        f.write_text(program.user_data(TOPO, n.name, settings(platform=platform)))
        r = subprocess.run([CLOUD_INIT, "schema", "--config-file", str(f)], capture_output=True, text=True)
        assert r.returncode == 0 and "Valid cloud-config" in r.stdout, r.stdout + r.stderr


@needs_cloud_init
def test_cloud_init_schema_would_catch_a_broken_document(tmp_path):
    f = tmp_path / "bad.yml"
    f.write_text("#cloud-config\nusers: 5\nbootcmd: not-a-list\n")
    assert subprocess.run([CLOUD_INIT, "schema", "--config-file", str(f)], capture_output=True).returncode != 0


RENDER_EL7 = """
import sys, yaml
from cloudinit.distros import rhel
from cloudinit.net import sysconfig
from cloudinit.net.network_state import parse_net_config_data
state = parse_net_config_data(yaml.safe_load(open(sys.argv[1])))
cfg = dict(rhel.Distro.renderer_configs["sysconfig"], flavor="rhel")
sysconfig.Renderer(config=cfg).render_network_state(state, target=sys.argv[2])
"""


@needs_cloud_init
def test_network_config_renders_as_a_static_centos_ifcfg(tmp_path):
    """What CentOS 7's sysconfig renderer writes from each node's network config."""
    python = Path(CLOUD_INIT).read_text().splitlines()[0].removeprefix("#!").split()[0]
    for n in TOPO.nodes:
        src, root = tmp_path / f"{n.name}.yml", tmp_path / n.name
        src.write_text(program.network_config(TOPO, n.address))
        subprocess.run([python, "-c", RENDER_EL7, str(src), str(root)], check=True, capture_output=True)
        ifcfg = dict(line.split("=", 1) for line in
                     (root / "etc/sysconfig/network-scripts/ifcfg-eth0").read_text().splitlines()
                     if "=" in line and not line.startswith("#"))
        assert ifcfg["BOOTPROTO"] == "none" and ifcfg["ONBOOT"] == "yes"
        assert ifcfg["IPADDR"] == n.address and ifcfg["NETMASK"] == str(TOPO.subnet.netmask)
        assert ifcfg["GATEWAY"] == TOPO.gateway and ifcfg["HWADDR"] == program.mac_for(n.address)
