"""The libvirt VM path without libvirt: the image recipe and its digest, the lab network's XML,
the domain-type probe's verdicts, the pool, and how the provider names what it creates."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from lab.providers import libvirt, vmimage
from lab.providers import vagrant as vagrant_provider
from labcore import topology
from provision import platforms


@pytest.fixture
def topo(tmp_path, monkeypatch) -> topology.Topology:
    monkeypatch.setenv("LAB_DIR", str(tmp_path / "lab"))
    return topology.load()


# --- the image -------------------------------------------------------------------------

def test_the_image_preinstalls_every_package_the_steps_install():
    plat = platforms.get("debian12")
    script = vmimage.build_script(plat)
    for pkg in plat.all_packages():
        assert pkg in script
    # The steps' own install command and Patroni from the wheelhouse, as the docker image does.
    assert plat.install.split(";")[0] in script and "--no-index" in script
    # PostgreSQL must find "no main cluster" before it is installed.
    assert script.index(plat.createcluster_conf) < script.index("postgresql-15")


def test_the_image_is_a_vm_with_dhcp_ssh_and_the_vagrant_user():
    script = vmimage.build_script(platforms.get("debian12"))
    assert "DHCP=ipv4" in script and "systemctl enable -q systemd-networkd.service ssh.service" in script
    assert "NOPASSWD:ALL" in script and "/home/vagrant/.ssh/authorized_keys" in script
    assert "rm -f /tmp/vagrant.pub /etc/ssh/ssh_host_*" in script      # every VM makes its own host keys
    assert ": > /etc/machine-id" in script
    assert "linux-image-amd64" in vmimage.VM_PACKAGES            # i6300esb.ko: the cloud kernel lacks it
    assert "root=/dev/vda" in vmimage.CMDLINE


def test_the_digest_changes_with_the_package_list_key_and_wheelhouse():
    plat = platforms.get("debian12")
    base = vmimage.digest(plat, "key", "wheels")
    assert base == vmimage.digest(plat, "key", "wheels")
    more = replace(plat, packages={**plat.packages, "haproxy": ("haproxy", "socat")})
    assert vmimage.digest(more, "key", "wheels") != base
    assert vmimage.digest(plat, "other key", "wheels") != base
    assert vmimage.digest(plat, "key", "other wheels") != base
    assert vmimage.box_name(base) == f"patroni-lab/debian12-{base}"


def test_box_metadata_is_vagrant_libvirts_format():
    assert vmimage.metadata() == {"provider": "libvirt", "format": "qcow2", "virtual_size": vmimage.DISK_GIB}


def test_mmdebstrap_runs_the_install_script_in_the_tree(tmp_path):
    cmd = vmimage.mmdebstrap_command(tmp_path / "root", tmp_path)
    assert cmd[0] == "mmdebstrap" and "--variant=minbase" in cmd
    assert cmd[-3:] == [vmimage.SUITE, str(tmp_path / "root"), vmimage.MIRROR]
    assert 'chroot "$1" bash /tmp/build.sh' in " ".join(cmd)
    assert any(c.startswith("--essential-hook=") for c in cmd)        # initramfs set-up before the kernel


def test_a_missing_tool_is_named_in_one_line(monkeypatch):
    monkeypatch.setattr(vmimage.shutil, "which", lambda t: None if t == "qemu-img" else "/usr/bin/" + t)
    with pytest.raises(vmimage.ImageError, match="needs qemu-img"):
        vmimage._need("mmdebstrap", "qemu-img")


# --- the network and the pool ----------------------------------------------------------

def test_the_network_is_the_labs_subnet_on_its_bridge_isolated_without_dns(topo):
    net = ET.fromstring(libvirt.network_xml(topo))
    assert net.findtext("name") == topo.name
    assert net.find("bridge").get("name") == topo.bridge
    assert net.find("forward") is None                      # isolated: nothing beyond the bridge
    assert net.find("dns").get("enable") == "no"            # no queries forwarded to the host's resolvers
    assert net.find("ip").attrib == {"address": topo.gateway, "netmask": str(topo.subnet.netmask)}
    assert net.find("ip/dhcp/range") is None                # reservations only, no dynamic range


def test_every_node_has_one_reservation_with_its_topology_address(topo):
    hosts = ET.fromstring(libvirt.network_xml(topo)).findall("ip/dhcp/host")
    assert [(h.get("name"), h.get("ip")) for h in hosts] == [(n.name, n.address) for n in topo.nodes]
    assert [h.get("mac") for h in hosts] == [libvirt.mac_for(n.address) for n in topo.nodes]
    assert len({h.get("mac") for h in hosts}) == len(hosts)
    assert libvirt.mac_for("192.168.234.201") == "52:54:00:a8:ea:c9"


def test_the_pool_is_a_directory_of_the_labs_own(topo):
    pool = ET.fromstring(libvirt.pool_xml(topo))
    assert pool.get("type") == "dir" and pool.findtext("name") == topo.name
    assert pool.findtext("target/path") == str(libvirt.POOL_ROOT / topo.name)


def test_the_vagrantfile_gets_the_same_macs_the_network_reserves(topo):
    prov = vagrant_provider.VagrantProvider("libvirt", {})
    env = prov.env(topo)
    pairs = dict(kv.split("=") for kv in env["LAB_LIBVIRT_MACS"].split(","))
    assert pairs == libvirt.macs(topo)
    assert env["LAB_LIBVIRT_POOL"] == topo.name and env["LAB_BOX"] == ""


# --- the domain type ---------------------------------------------------------------------

def test_a_kernel_that_panics_under_kvm_means_kvm():
    p = libvirt.judge(0, "[    0.9] Kernel panic - not syncing: VFS: Unable to mount root fs", 30)
    assert p.domain_type == "kvm"


def test_a_kvm_guest_that_hangs_or_aborts_means_tcg():
    hung = libvirt.judge(None, "Probing EDD (edd=off to disable)... ok", 30)
    assert hung.domain_type == "qemu" and "within 30 s" in hung.why
    aborted = libvirt.judge(134, "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0\n", 30)
    assert aborted.domain_type == "qemu" and "failed to set MSR" in aborted.why


def test_the_probe_boots_the_kernel_with_kvm_and_a_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(libvirt.os, "access", lambda path, mode: True)
    monkeypatch.setattr(libvirt.shutil, "which", lambda t: "/usr/bin/" + t)
    seen = {}

    def runner(cmd, timeout):
        seen.update(cmd=cmd, timeout=timeout)
        return None, ""
    p = libvirt.probe(tmp_path / "vmlinuz", runner=runner, seconds=12)
    assert p.domain_type == "qemu"
    assert seen["timeout"] == 12 and "-accel" in seen["cmd"] and "kvm" in seen["cmd"]
    assert str(tmp_path / "vmlinuz") in seen["cmd"] and "-no-reboot" in seen["cmd"]


def test_no_kvm_device_means_tcg_without_running_qemu(tmp_path, monkeypatch):
    monkeypatch.setattr(libvirt.os, "access", lambda path, mode: False)
    p = libvirt.probe(tmp_path / "vmlinuz", runner=lambda *a: pytest.fail("qemu ran"))
    assert p.domain_type == "qemu" and "/dev/kvm" in p.why


def test_a_forced_domain_type_skips_the_probe(topo):
    prov = vagrant_provider.VagrantProvider("libvirt", {"domain_type": "qemu"})
    assert prov._choose_domain_type()[0] == "qemu"


# --- platforms ---------------------------------------------------------------------------

def test_libvirt_runs_debian12_with_the_labs_box_and_el7_with_a_centos_box():
    assert vagrant_provider.VagrantProvider("libvirt", {}).platform == "debian12"
    assert vagrant_provider.VagrantProvider("libvirt", {"box": "centos/7"}).platform == "el7"
    assert vagrant_provider.VagrantProvider("virtualbox", {}).platform == "el7"


# --- the Vagrantfile's libvirt block with what the provider passes ------------------------

@pytest.mark.local_tool("vagrant")
@pytest.mark.parametrize("domain_type", ["qemu", "kvm"])
def test_vagrant_validates_the_libvirt_block_with_the_labs_box(topo, tmp_path, domain_type):
    import subprocess

    import hermetic
    vagrant = hermetic.real_tool("vagrant")
    if "vagrant-libvirt" not in subprocess.run([vagrant, "plugin", "list"], capture_output=True,
                                               text=True).stdout:
        pytest.fail("the vagrant-libvirt plugin is missing (scripts/bootstrap.sh installs it)")
    prov = vagrant_provider.VagrantProvider("libvirt", {})
    prov.domain_type = domain_type
    prov.vm_image = vmimage.cached("0123456789ab")
    env = prov.env(topo)
    env["VAGRANT_DOTFILE_PATH"] = str(tmp_path / "dot")
    assert env["LAB_BOX"] == "patroni-lab/debian12-0123456789ab" and env["LAB_DOMAIN_TYPE"] == domain_type
    assert env["LAB_VM_KERNEL"] == str(libvirt.pool_dir(topo) / "vmlinuz-0123456789ab")
    r = subprocess.run([vagrant, "validate"], cwd=vagrant_provider.ROOT, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0 and "validated successfully" in r.stdout, r.stdout + r.stderr


def test_pool_volumes_are_read_from_virshs_table(monkeypatch):
    table = (" Name                 Path\n------------------------------------------\n"
             " vmlinuz-0123   /var/lib/libvirt/images/patroni-lab/vmlinuz-0123\n"
             " patroni-lab_node1.img   /var/lib/libvirt/images/patroni-lab/patroni-lab_node1.img\n\n")
    monkeypatch.setattr(libvirt, "virsh", lambda *a: type("R", (), {"stdout": table, "returncode": 0})())
    assert libvirt.volumes("patroni-lab") == ["vmlinuz-0123", "patroni-lab_node1.img"]


def test_a_reset_machine_ends_a_waiting_command(monkeypatch):
    """Connections send keepalives, so a command on a machine reset under it fails instead of hanging."""
    from labcore import remote
    conn = remote.new_connection("node1", "/dev/null")
    seen = []
    monkeypatch.setattr(remote.Connection, "open", lambda self: None)
    conn.transport = type("T", (), {"set_keepalive": lambda self, s: seen.append(s)})()
    conn.open()
    assert seen == [15]
