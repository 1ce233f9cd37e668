"""Every rendered configuration is checked by the tool that will read it."""
from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from labcore import poll
from provision import engine, platforms
from provision.context import Context, NodeFacts
from provision.steps import STEPS

from test_provision_support import loopback_topology, topology

VENV_BIN = Path(sys.executable).parent


def files_of(step: str, ctx: Context) -> dict[str, str]:
    return {r.path: r.content for r in STEPS[step].resources(ctx)
            if isinstance(r, engine.File) and r.content is not None}


def ctx_for(topo, node: str, platform: str, container: bool = True, iface: str = "eth1",
            **overrides) -> Context:
    plat = dataclasses.replace(platforms.get(platform), **overrides)
    return Context(topo, topo.node(node), plat, NodeFacts(iface, container))


def fake_bin_dir(tmp: Path, version: int) -> Path:
    """A bin_dir whose postgres reports the platform's major version (Patroni's validator asks it)."""
    d = tmp / f"pg{version}-bin"
    d.mkdir(exist_ok=True)
    for name in ("postgres", "pg_ctl", "initdb", "pg_controldata", "pg_basebackup", "pg_rewind",
                 "pg_isready"):
        p = d / name
        p.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {version}.0'\n")
        p.chmod(0o755)
    return d


@pytest.fixture
def etcd_listener():
    """Patroni's validator connects to the DCS hosts: listen on the loopback topology's etcd address."""
    topo = loopback_topology()
    node = topo.etcd_nodes[0]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Several checkouts run the unit tier at once on one host: let their listeners share the port.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((node.address, topo.ports.etcd_client))
    s.listen(8)
    yield topo
    s.close()


def patroni_program(conf_dir: Path) -> subprocess.CompletedProcess:
    """`patroni --validate-config --ignore-listen-port conf_dir`, the installed program."""
    return subprocess.run([str(VENV_BIN / "patroni"), "--validate-config", "--ignore-listen-port", str(conf_dir)],
                          capture_output=True, text=True)


def validate_patroni(conf_dir: Path) -> subprocess.CompletedProcess:
    """What :func:`patroni_program` does, by the same Patroni code in this process (the program
    spends half a second starting up per config; there are two dozen): the validator of
    ``patroni/__main__.py``, the same merging of the folder's files, the same message on stderr
    and exit 1 when refused. test_patroni_validator_is_really_checking runs both."""
    from patroni.config import Config, ConfigParseError
    from patroni.validator import populate_validate_params, schema

    args = ["patroni", "--validate-config", "--ignore-listen-port", str(conf_dir)]
    populate_validate_params(ignore_listen_port=True)
    try:
        Config(str(conf_dir), validator=schema)
    except ConfigParseError as e:
        return subprocess.CompletedProcess(args, 1, "", f"{e.value}\n")
    return subprocess.CompletedProcess(args, 0, "", "")


@pytest.mark.parametrize("platform", sorted(platforms.PLATFORMS))
@pytest.mark.parametrize("node", ["node1", "node3"])
def test_patroni_member_config_passes_patroni_validate_config(platform, node, tmp_path, etcd_listener):
    topo = loopback_topology(replicatefrom={"pg3": "pg2"})
    bin_dir = fake_bin_dir(tmp_path, platforms.get(platform).pg_version)
    ctx = ctx_for(topo, node, platform, pg_bin=str(bin_dir))
    conf = tmp_path / "patroni"
    conf.mkdir()
    for step in ("patroni", "watchdog", "vip", "cascading"):
        for path, content in files_of(step, ctx).items():
            if path.startswith("/etc/patroni/"):
                (conf / Path(path).name).write_text(content)
    assert sorted(p.name for p in conf.iterdir()) == (
        ["10-cluster.yml", "20-watchdog.yml", "30-callbacks.yml"] + (["40-replicatefrom.yml"] if node == "node3" else []))
    r = validate_patroni(conf)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("platform", sorted(platforms.PLATFORMS))
def test_standby_cluster_config_passes_patroni_validate_config(platform, tmp_path, etcd_listener):
    topo = etcd_listener
    ctx = ctx_for(topo, "node4", platform, pg_bin=str(fake_bin_dir(tmp_path, platforms.get(platform).pg_version)))
    conf = tmp_path / "patroni"
    conf.mkdir()
    text = files_of("standby", ctx)["/etc/patroni/10-cluster.yml"]
    (conf / "10-cluster.yml").write_text(text)
    r = validate_patroni(conf)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"host: {topo.vips.read_write}" in text and "primary_slot_name: slot1" in text


def test_patroni_validator_is_really_checking(tmp_path, etcd_listener):
    """The same check fails on a broken fragment, so the passing tests above mean something."""
    topo = etcd_listener
    ctx = ctx_for(topo, "node1", "debian12", pg_bin=str(fake_bin_dir(tmp_path, 15)))
    conf = tmp_path / "patroni"
    conf.mkdir()
    good = files_of("patroni", ctx)["/etc/patroni/10-cluster.yml"]
    (conf / "10-cluster.yml").write_text(good)
    for check in (patroni_program, validate_patroni):       # the program, and the same code in-process
        r = check(conf)
        assert r.returncode == 0, (check.__name__, r.stderr)
    (conf / "10-cluster.yml").write_text(good.replace("ttl: 30", "ttl: thirty"))
    program, here = patroni_program(conf), validate_patroni(conf)
    assert program.returncode == here.returncode == 1
    assert "ttl" in here.stderr and here.stderr == program.stderr, (here.stderr, program.stderr)


def test_article_settings_are_in_the_member_config():
    ctx = ctx_for(topology(), "node2", "debian12")
    text = files_of("patroni", ctx)["/etc/patroni/10-cluster.yml"]
    for needle in ("scope: pgsql", "namespace: /service/", "name: pg2", "ttl: 30", "loop_wait: 10",
                   "retry_timeout: 10", "maximum_lag_on_failover: 1048576", "primary_start_timeout: 300",
                   "use_pg_rewind: true", "use_slots: true", "wal_level: logical", "data-checksums",
                   "lc-ctype: zh_CN.UTF-8", "host replication repl 0.0.0.0/0 md5", "max-rate: 100M",
                   "checkpoint: fast", "nofailover: false", "connect_address: 192.168.234.202:5432",
                   "etcd3:", "hosts: 192.168.234.204:2379", "data_dir: /pgsql/data"):
        assert needle in text, needle
    el7 = files_of("patroni", ctx_for(topology(), "node2", "el7"))["/etc/patroni/10-cluster.yml"]
    assert "\netcd:\n" in el7 and "wal_keep_segments: 100" in el7 and "bin_dir: /usr/pgsql-12/bin" in el7


def test_watchdog_fragment_uses_the_testing_driver_in_containers():
    text = files_of("watchdog", ctx_for(topology(), "node1", "debian12"))["/etc/patroni/20-watchdog.yml"]
    assert 'mode: "automatic"' in text and "driver: testing" in text and "safety_margin: 5" in text
    text = files_of("watchdog", ctx_for(topology(), "node1", "el7", container=False))["/etc/patroni/20-watchdog.yml"]
    assert "device: /dev/watchdog" in text and "driver" not in text


@pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed")
def test_haproxy_cfg_passes_haproxy_check(tmp_path):
    for platform in platforms.PLATFORMS:
        cfg = files_of("haproxy", ctx_for(topology(), "node1", platform))["/etc/haproxy/haproxy.cfg"]
        (tmp_path / "haproxy.cfg").write_text(cfg)
        r = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        for n in topology().postgres_nodes:
            assert f"{n.address}:5432 maxconn 100 check port 8008" in cfg
        assert "option httpchk GET /replica" in cfg and "bind *:7000" in cfg


def multicast_interface() -> str:
    """A host interface VRRP could use (not loopback, multicast-capable): keepalived -t checks it exists."""
    for _, name in socket.if_nameindex():
        flags = int(Path(f"/sys/class/net/{name}/flags").read_text(), 16)
        if name != "lo" and flags & 0x1000:          # IFF_MULTICAST
            return name
    pytest.skip("no multicast-capable interface on this host")


@pytest.mark.skipif(not shutil.which("keepalived"), reason="keepalived not installed")
@pytest.mark.parametrize("node", ["node1", "node3"])
def test_keepalived_config_passes_keepalived_check(node, tmp_path):
    # keepalived -t insists the interface exists and is not loopback: use one of this host's.
    iface = multicast_interface()
    ctx = ctx_for(topology(), node, "debian12", iface=iface, keepalived_dir=str(tmp_path))
    files = files_of("keepalived", ctx)
    if ctx.node.has("haproxy"):
        files |= files_of("haproxy", ctx)
    for path, content in files.items():
        if path.startswith(str(tmp_path)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content)
    main = tmp_path / "keepalived.conf"
    r = subprocess.run(["keepalived", "-t", "-f", str(main)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    both = "".join(files.values())
    assert "virtual_router_id 211" in both and "192.168.234.211" in both
    assert ("192.168.234.212" in both) is ctx.node.has("haproxy")
    settings = "".join(line for v in files.values() for line in v.splitlines(True) if not line.lstrip().startswith("#"))
    assert "192.168.234.210" not in settings      # that one belongs to the Patroni callback


def test_keepalived_check_catches_a_broken_file(tmp_path):
    (tmp_path / "keepalived.conf").write_text("vrrp_instance x {\n  virtual_router_id 999\n  bogus\n")
    r = subprocess.run(["keepalived", "-t", "-f", str(tmp_path / "keepalived.conf")], capture_output=True, text=True)
    assert r.returncode != 0


UNITS = {
    "patroni": ["/etc/systemd/system/patroni.service"],
    "watchdog": ["/etc/systemd/system/patroni-watchdog.service"],
}


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    libexec = tmp_path / "libexec"
    libexec.mkdir()
    (libexec / "watchdog-fencer").write_text("#!/bin/sh\n")
    (libexec / "watchdog-fencer").chmod(0o755)
    ctx = ctx_for(topology(), "node1", "debian12", patroni_bin=str(VENV_BIN))
    rendered = {**files_of("patroni", ctx), **files_of("watchdog", ctx)}
    units = []
    for step, paths in UNITS.items():
        for p in paths:
            text = rendered[p].replace("/usr/local/libexec/patroni-lab", str(libexec))
            unit = tmp_path / Path(p).name
            unit.write_text(text)
            units.append(str(unit))
    r = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    problems = [line for line in (r.stdout + r.stderr).splitlines()
                if any(Path(u).name in line for u in units)]
    assert not problems, "\n".join(problems)


def rendered_scripts(tmp_path: Path) -> list[Path]:
    out = []
    for platform in platforms.PLATFORMS:
        ctx = ctx_for(topology(), "node1", platform)
        for step in ("watchdog", "vip"):
            for path, content in files_of(step, ctx).items():
                if content.startswith("#!/bin/bash"):
                    p = tmp_path / f"{platform}-{Path(path).name}"
                    p.write_text(content)
                    out.append(p)
    return out


def test_scripts_pass_bash_n_and_shellcheck(tmp_path):
    scripts = rendered_scripts(tmp_path)
    assert {p.name.split("-", 1)[1] for p in scripts} == {"watchdog-fencer", "vip-callback"}
    for p in scripts:
        r = subprocess.run(["bash", "-n", str(p)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout


def test_vip_callback_takes_the_vip_for_both_primary_role_names_and_drops_it_otherwise(tmp_path):
    """Run the real script with ip/arping/logger replaced by recorders on PATH."""
    ctx = ctx_for(topology(), "node1", "debian12")
    script = tmp_path / "vip-callback"
    text = files_of("vip", ctx)["/usr/local/libexec/patroni-lab/vip-callback"]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls"
    state = tmp_path / "has-vip"
    # ip: "addr show" prints the VIP when the state file exists; add/del flip it.
    (bindir / "ip").write_text(f"""#!/bin/bash
echo "ip $*" >> {log}
case "$1 $2" in
  "-o -4") [ -e {state} ] && echo "2: eth1 inet 192.168.234.210/32 scope global eth1" ;;
  "addr add") touch {state} ;;
  "addr del") rm -f {state} ;;
esac
exit 0
""")
    for tool in ("arping", "logger"):
        (bindir / tool).write_text(f"#!/bin/bash\necho '{tool} '\"$*\" >> {log}\n")
    for f in bindir.iterdir():
        f.chmod(0o755)
    text = text.replace("/usr/sbin/ip", str(bindir / "ip")).replace("/usr/bin/arping", str(bindir / "arping"))
    script.write_text(text)
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}

    def call(*args: str) -> None:
        subprocess.run(["bash", str(script), *args], env=env, check=True)

    for role in ("master", "primary"):
        state.unlink(missing_ok=True)
        call("on_role_change", role, "pgsql")
        assert state.exists(), role
    calls = log.read_text()
    assert "ip addr add 192.168.234.210/32 dev eth1" in calls
    assert "arping -q -U -c 3 -I eth1 -s 192.168.234.210 192.168.234.210" in calls
    call("on_role_change", "replica", "pgsql")
    assert not state.exists()
    call("on_start", "primary", "pgsql")
    call("on_stop", "replica", "pgsql")        # not an action the lab configures: leaves the VIP alone
    assert state.exists()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_catches_a_broken_unit(tmp_path):
    unit = tmp_path / "broken.service"
    unit.write_text("[Service]\nExecStart=/nonexistent/patroni\nRestart=sometimes\n")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert "broken.service" in r.stdout + r.stderr


def _fencer(tmp_path: Path) -> tuple[Path, Path, dict]:
    """The real fencer script, with systemctl and logger replaced by stand-ins on PATH."""
    ctx = ctx_for(topology(), "node1", "debian12")
    script = tmp_path / "watchdog-fencer"
    script.write_text(files_of("watchdog", ctx)["/usr/local/libexec/patroni-lab/watchdog-fencer"])
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "systemctl").write_text(f"#!/bin/sh\ncat {tmp_path}/patroni.pid\n")
    (bindir / "logger").write_text(f"#!/bin/sh\necho \"$*\" >> {tmp_path}/log\n")
    for f in bindir.iterdir():
        f.chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    return script, data, {"PATH": f"{bindir}:/usr/bin:/bin"}


def _victims(tmp_path: Path, data: Path) -> tuple[subprocess.Popen, subprocess.Popen]:
    patroni = subprocess.Popen(["sleep", "300"])
    postmaster = subprocess.Popen(["sleep", "300"])
    (tmp_path / "patroni.pid").write_text(f"{patroni.pid}\n")
    (data / "postmaster.pid").write_text(f"{postmaster.pid}\n{data}\n")
    return patroni, postmaster


def _state(tmp_path: Path) -> str:
    """The fencer's state file as it is now ('' before its first write, or mid-rewrite)."""
    try:
        return (tmp_path / "state").read_text()
    except FileNotFoundError:
        return ""


def _wait(pred: Callable[[], bool], seconds: float) -> bool:
    return poll.until(pred, seconds, every=0.1)[0]


def test_fencer_kills_patroni_and_postmaster_when_keepalives_stop(tmp_path):
    script, data, env = _fencer(tmp_path)
    patroni, postmaster = _victims(tmp_path, data)
    fifo = tmp_path / "watchdog"
    fencer = subprocess.Popen(["bash", str(script), str(fifo), str(data), "25"], env=env)
    try:
        assert _wait(fifo.exists, 5)
        with open(fifo, "w") as w:           # as Patroni's testing driver: set timeout, then keepalives
            w.write("Ctimeout=3\n"); w.flush()
            for _ in range(3):
                time.sleep(0.5)
                w.write("1"); w.flush()
            assert patroni.poll() is None and postmaster.poll() is None
            # the fencer reads the FIFO on its own schedule: its state says armed once it has
            assert _wait(lambda: _state(tmp_path).startswith("armed timeout=3"), 5), _state(tmp_path)
            # keepalives stop (a hung Patroni): within ~3 s both die
            assert _wait(lambda: patroni.poll() is not None and postmaster.poll() is not None, 10)
        # the state line is written after the kills: wait for it rather than race it
        assert _wait(lambda: _state(tmp_path).startswith("fired"), 5), _state(tmp_path)
        assert "fencing this node" in (tmp_path / "log").read_text()
    finally:
        for p in (fencer, patroni, postmaster):
            p.kill()


def test_fencer_leaves_a_cleanly_disarmed_node_alone(tmp_path):
    script, data, env = _fencer(tmp_path)
    patroni, postmaster = _victims(tmp_path, data)
    fifo = tmp_path / "watchdog"
    fencer = subprocess.Popen(["bash", str(script), str(fifo), str(data), "25"], env=env)
    try:
        assert _wait(fifo.exists, 5)
        with open(fifo, "w") as w:
            w.write("Ctimeout=1\n1V"); w.flush()     # armed, one keepalive, magic close
        log = tmp_path / "log"
        assert _wait(lambda: log.exists() and "disarmed by Patroni" in log.read_text(), 5)
        # disarmed: two of its timeouts later nothing was killed (a hold, not a wait for an event)
        assert not _wait(lambda: patroni.poll() is not None or postmaster.poll() is not None, 2.5)
        assert _state(tmp_path).strip() == "disarmed"
    finally:
        for p in (fencer, patroni, postmaster):
            p.kill()
