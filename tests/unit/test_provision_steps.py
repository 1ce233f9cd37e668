"""Step plans without machines: order, selection errors, idempotence, topology-derived values."""
from __future__ import annotations

from pathlib import Path

import pytest

import provision
from provision import engine, platforms
from provision.context import Context, NodeFacts
from provision.steps import ORDER, STEPS

from test_provision_support import converged_fact, topology

ARTICLE_ORDER = ["time", "firewall", "etcd", "postgres", "patroni", "watchdog", "vip", "keepalived",
                 "haproxy", "cascading", "standby"]


def contexts(topo, platform):
    for step in ORDER:
        for node in step.nodes(topo):
            yield step, Context(topo, node, platforms.get(platform), NodeFacts("ens33", platform == "debian12"))


def test_steps_follow_the_article_order():
    assert [m.NAME for m in ORDER] == ARTICLE_ORDER
    sections = [tuple(int(x) for x in m.SECTION.split(".")) for m in ORDER]
    assert sections == sorted(sections)


@pytest.mark.parametrize("platform", sorted(platforms.PLATFORMS))
def test_a_converged_node_plans_zero_changes(platform):
    topo = topology()
    for step, ctx in contexts(topo, platform):
        resources = step.resources(ctx)
        assert engine.plan(resources, [converged_fact(r) for r in resources]) == [], (step.NAME, ctx.node.name)


@pytest.mark.parametrize("platform", sorted(platforms.PLATFORMS))
def test_resource_keys_are_unique_within_a_step(platform):
    for step, ctx in contexts(topology(), platform):
        keys = [r.key for r in step.resources(ctx)]
        assert len(keys) == len(set(keys)), (step.NAME, keys)


def test_unknown_step_or_node_is_one_line_with_a_suggestion():
    topo = topology()
    with pytest.raises(provision.SelectionError, match=r"^unknown step 'etdc' \(did you mean etcd\?\)$"):
        provision.run(topo, steps=["etdc"], report=lambda s: None)
    with pytest.raises(provision.SelectionError, match=r"^unknown node 'db7' \(known: node1, node2, node3, node4\)$"):
        provision.run(topo, nodes=["db7"], report=lambda s: None)


def test_interface_comes_from_the_node_facts():
    topo = topology()
    ctx = Context(topo, topo.node("node1"), platforms.DEBIAN12, NodeFacts("enp7s0", True))
    text = "".join(r.content or "" for r in STEPS["keepalived"].resources(ctx) if isinstance(r, engine.File))
    assert "interface enp7s0" in text
    script = next(r for r in STEPS["vip"].resources(ctx) if getattr(r, "path", "").endswith("vip-callback"))
    assert "DEV=enp7s0" in script.content


def test_patroni_installs_everywhere_then_starts_node1_alone_then_the_others():
    topo = topology()
    waves = STEPS["patroni"].waves(topo, STEPS["patroni"].nodes(topo))
    assert [(w.part, [n.name for n in w.nodes]) for w in waves] == [
        ("install", ["node1", "node2", "node3", "node4"]), ("start", ["node1"]), ("start", ["node2", "node3"])]


def test_standby_step_creates_the_slot_before_the_standby_member():
    topo = topology()
    waves = STEPS["standby"].waves(topo, STEPS["standby"].nodes(topo))
    assert [[n.name for n in w.nodes] for w in waves] == [["node1"], ["node4"]]
    (slot,) = provision.preview(topo, "standby", "node1", "debian12")
    assert "slots.slot1.type=physical" in slot.commands[0]


def test_debian_refuses_the_main_cluster_before_postgresql_is_installed():
    changes = provision.preview(topology(), "postgres", "node1", "debian12")
    whats = [c.what for c in changes]
    assert whats.index("write /etc/postgresql-common/createcluster.d/50-patroni-lab.conf") < \
        whats.index("install postgresql-15 locales")


def test_data_directory_is_owned_by_postgres_with_mode_700():
    changes = provision.preview(topology(), "postgres", "node2", "debian12")
    data = next(c for c in changes if c.what == "create /pgsql/data")
    assert data.commands[1:] == ["chown postgres:postgres /pgsql/data", "chmod 700 /pgsql/data"]


def test_cascading_is_off_by_default_and_on_from_the_topology():
    off = provision.preview(topology(), "cascading", "node3", "debian12", facts=["absent", "enabled\nactive"])
    assert off == []
    on = provision.preview(topology(replicatefrom={"pg3": "pg2"}), "cascading", "node3", "debian12",
                           facts=["absent", "enabled\nactive"])
    assert [c.what for c in on] == ["write /etc/patroni/40-replicatefrom.yml", "reload patroni"]


def test_chrony_runs_with_minus_x_only_in_containers():
    topo = topology()
    for container, expected in ((True, 'DAEMON_OPTS="-F 1 -x"'), (False, 'DAEMON_OPTS="-F 1"')):
        changes = provision.preview(topo, "time", "node1", "debian12", container=container)
        options = next(c for c in changes if c.what == "write /etc/default/chrony")
        import base64
        payload = next(cmd for cmd in options.commands if "base64 -d" in cmd).split()[1]
        assert expected in base64.b64decode(payload).decode()
        has_dropin = any("patroni-lab-container.conf" in c.what for c in changes)
        assert has_dropin is container


def test_open_ports_mode_keeps_the_firewall_and_opens_the_lab_ports_to_the_lab_subnet_only():
    topo = topology(firewall="open-ports")
    el7 = [c for c in provision.preview(topo, "firewall", "node1", "el7")]
    allowed = {c.what for c in el7}
    for port in ("5432/tcp", "8008/tcp", "2379/tcp", "2380/tcp", "5000/tcp", "6000/tcp", "7000/tcp"):
        assert f"firewalld allows {port} from 192.168.234.0/24" in allowed
    assert "firewalld allows VRRP from 192.168.234.0/24" in allowed
    assert not any("--add-port" in cmd for c in el7 for cmd in c.commands)     # no port open to every source
    assert not any("disable" in c.what for c in el7)
    nft = next(c for c in provision.preview(topo, "firewall", "node1", "debian12") if c.what == "write /etc/nftables.conf")
    import base64
    text = base64.b64decode(next(cmd for cmd in nft.commands if "base64 -d" in cmd).split()[1]).decode()
    assert "ip saddr { 192.168.234.0/24 } tcp dport { 2379, 2380, 5000, 5432, 6000, 7000, 8008 } accept" in text
    assert "tcp dport 22 accept" in text


def test_the_watchdog_is_a_fencer_in_containers_and_a_device_on_machines():
    topo = topology()
    container = {c.what for c in provision.preview(topo, "watchdog", "node1", "debian12", container=True)}
    machine = {c.what for c in provision.preview(topo, "watchdog", "node1", "debian12", container=False)}
    assert "enable + restart patroni-watchdog" in container
    assert "a watchdog device exists" in machine and not any("patroni-watchdog" in w for w in machine)


def test_three_etcd_members_form_one_cluster_and_patroni_knows_all_three():
    import yaml
    from labcore.topology import ROOT, parse
    data = yaml.safe_load((ROOT / "topology.yml").read_text())
    data["etcd"]["members"] = ["node1", "node2", "node3"]
    topo = parse(data)
    assert [n.name for n in STEPS["etcd"].nodes(topo)] == ["node1", "node2", "node3"]
    ctx = Context(topo, topo.node("node2"), platforms.DEBIAN12, NodeFacts("eth1", True))
    conf = next(r.content for r in STEPS["etcd"].resources(ctx) if getattr(r, "path", "") == "/etc/default/etcd")
    assert ('ETCD_INITIAL_CLUSTER="node1=http://192.168.234.201:2380,node2=http://192.168.234.202:2380,'
            'node3=http://192.168.234.203:2380"') in conf
    assert 'ETCD_LISTEN_PEER_URLS="http://192.168.234.202:2380"' in conf
    patroni = next(r.content for r in STEPS["patroni"].resources(ctx) if getattr(r, "path", "").endswith("10-cluster.yml"))
    assert "hosts: 192.168.234.201:2379,192.168.234.202:2379,192.168.234.203:2379" in patroni


def test_article_mode_on_debian_never_stops_nftables_which_would_flush_foreign_rules():
    cmds = [cmd for c in provision.preview(topology(), "firewall", "node1", "debian12",
                                           facts=["enabled", "needed", "needed"]) for cmd in c.commands]
    assert cmds == ["systemctl disable nftables", "nft delete table inet patroni_lab", "iptables -F"]


def test_wheel_tags_tell_pure_from_compiled_wheels():
    from provision import wheelhouse
    assert wheelhouse.is_pure(Path("click-8.1.7-py3-none-any.whl"))
    compiled = Path("psycopg2_binary-2.9.10-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert not wheelhouse.is_pure(compiled)
    assert wheelhouse.compiled_for(compiled, "3.12") and not wheelhouse.compiled_for(compiled, "3.11")
    stable = Path("wcwidth-0.9.4-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl")
    assert wheelhouse.compiled_for(stable, "3.13") and wheelhouse.compiled_for(stable, "3.10")
    assert not wheelhouse.compiled_for(stable, "3.9")          # Debian 11: PyPI's cp39 build instead


def wheel(folder: Path, name: str, requires_python: str | None = None) -> None:
    """A wheel file with just its METADATA (what retarget reads of it)."""
    import zipfile
    dist = "-".join(name.split("-")[:2])
    meta = "Metadata-Version: 2.1\n" + (f"Requires-Python: {requires_python}\n" if requires_python else "") + "\n"
    with zipfile.ZipFile(folder / name, "w") as z:
        z.writestr(f"{dist}.dist-info/METADATA", meta)


def stand_in_pip(asked: list):
    def pip(*args: str) -> None:        # what `pip download` does with these arguments: one wheel in -d
        asked.append(args)
        version = args[args.index("--python-version") + 1].replace(".", "")
        name, _, release = args[-1].partition("==")
        out = Path(args[args.index("-d") + 1])
        wheel(out, f"{name}-{release or 'newest'}-cp{version}-cp{version}-manylinux_2_17_aarch64.whl")
    return pip


def test_a_wheel_compiled_for_another_python_is_swapped_for_the_nodes_build(tmp_path, monkeypatch):
    """A control host on Python 3.12 (Ubuntu 24.04) still serves Debian 12's 3.11 nodes: pip is asked
    for the nodes' build of each compiled wheel (a stand-in answers here; tests/live/
    test_05_wheelhouse.py asks PyPI itself), pure wheels stay as they are."""
    from provision import wheelhouse
    compiled = "psycopg2_binary-2.9.10-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    pure = "click-8.1.7-py3-none-any.whl"
    wheel(tmp_path, compiled, ">=3.8")
    wheel(tmp_path, pure, ">=3.7")
    asked = []
    monkeypatch.setattr(wheelhouse, "_pip", stand_in_pip(asked))
    assert wheelhouse.retarget(tmp_path, "3.11", machine="aarch64") == ["psycopg2_binary"]
    assert sorted(w.name for w in tmp_path.glob("*.whl")) == [
        pure, "psycopg2_binary-2.9.10-cp311-cp311-manylinux_2_17_aarch64.whl"]
    (args,) = asked
    assert args[:7] == ("download", "-q", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
                        "--python-version") and args[7] == "3.11"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--platform"] == [
        f"{tag}_aarch64" for tag in wheelhouse.MANYLINUX]
    assert args[-3:] == ("-d", str(tmp_path), "psycopg2_binary==2.9.10")


def test_a_release_that_dropped_the_nodes_python_is_swapped_for_the_newest_that_runs_there(tmp_path, monkeypatch):
    """The host resolves for its own Python: on Debian 11's 3.9 nodes, a dependency whose newest release
    needs 3.10 (click 8.2) is replaced by the newest release that still runs on 3.9 (not pinned)."""
    from provision import wheelhouse
    wheel(tmp_path, "click-8.2.1-py3-none-any.whl", ">=3.10")
    wheel(tmp_path, "six-1.17.0-py2.py3-none-any.whl")
    asked = []
    monkeypatch.setattr(wheelhouse, "_pip", stand_in_pip(asked))
    assert wheelhouse.retarget(tmp_path, "3.9", machine="aarch64") == ["click"]
    assert asked[0][-1] == "click" and "click-8.2.1-py3-none-any.whl" not in {w.name for w in tmp_path.iterdir()}
    on_310 = tmp_path / "py310"
    on_310.mkdir()
    wheel(on_310, "click-8.2.1-py3-none-any.whl", ">=3.10")
    assert wheelhouse.retarget(on_310, "3.10", machine="aarch64") == []       # where it runs, it stays
