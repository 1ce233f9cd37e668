"""The engine's plan is a pure function of resources and facts: no machine needed."""
from __future__ import annotations

import base64
import grp
import os
import pwd
import subprocess

import pytest

from provision import engine
from provision.engine import Command, Directory, File, Packages, Service


def pk() -> Packages:
    return Packages(("chrony", "curl"), 'for p in "$@"; do echo "$p"; done', "apt-get install -y {pkgs}")


def test_packages_installs_only_what_is_missing():
    (change,) = engine.plan([pk()], ["chrony\n"])
    assert change.commands == ["apt-get install -y curl"]
    assert engine.plan([pk()], ["chrony\ncurl\n"]) == []


def test_file_written_when_absent_or_different_and_left_alone_when_equal():
    f = File("/etc/x.conf", "a=1\n", "postgres", "postgres", "600")
    (change,) = engine.plan([f], ["absent\n"])
    assert change.what == "write /etc/x.conf"
    assert any("base64 -d" in c for c in change.commands)
    (change,) = engine.plan([f], ["postgres:postgres:600\n" + "0" * 64 + "\n"])
    assert change.what == "update /etc/x.conf"
    assert engine.plan([f], [f"postgres:postgres:600\n{f.digest}\n"]) == []


def test_file_with_right_content_but_wrong_owner_only_gets_chown_and_chmod():
    f = File("/etc/x.conf", "a=1\n", "postgres", "postgres", "600")
    (change,) = engine.plan([f], [f"root:root:644\n{f.digest}\n"])
    assert change.commands == ["chown postgres:postgres /etc/x.conf", "chmod 600 /etc/x.conf"]


def test_file_that_must_not_exist_is_removed():
    f = File("/etc/patroni/40-replicatefrom.yml", None)
    assert engine.plan([f], ["absent\n"]) == []
    (change,) = engine.plan([f], ["postgres:postgres:600\nabc\n"])
    assert change.commands[0] == "rm -f /etc/patroni/40-replicatefrom.yml"


def test_directory_created_with_owner_and_mode():
    d = Directory("/pgsql/data", "postgres", "postgres", "700")
    (change,) = engine.plan([d], ["absent\n"])
    assert change.what == "create /pgsql/data"
    assert engine.plan([d], ["postgres:postgres:700\n"]) == []


def test_service_restarts_only_when_a_watched_resource_changed():
    conf = File("/etc/haproxy/haproxy.cfg", "x\n")
    svc = Service("haproxy", restart_on=(conf.key,))
    running = "enabled\nactive\n"
    assert engine.plan([conf, svc], [f"root:root:644\n{conf.digest}\n", running]) == []
    changes = engine.plan([conf, svc], ["absent\n", running])
    assert [c.what for c in changes] == ["write /etc/haproxy/haproxy.cfg", "restart haproxy"]
    # stopped when facts were read, but the same step may have started it: restart, not start
    changes = engine.plan([conf, svc], ["absent\n", "disabled\ninactive\n"])
    assert changes[-1].commands == ["systemctl enable haproxy", "systemctl restart haproxy"]


def test_service_reload_instead_of_restart():
    conf = File("/etc/patroni/10-cluster.yml", "x\n")
    svc = Service("patroni", reload_on=(conf.key,))
    changes = engine.plan([conf, svc], ["absent\n", "enabled\nactive\n"])
    assert changes[-1].commands == ["systemctl reload patroni"]


def test_service_stopped_at_fact_time_is_restarted_when_its_file_changed():
    """Installing a package in the same step may start it with defaults: start would be a no-op."""
    conf = File("/etc/haproxy/haproxy.cfg", "x\n")
    svc = Service("haproxy", reload_on=(conf.key,))
    changes = engine.plan([conf, svc], ["absent\n", "disabled\ninactive\n"])
    assert changes[-1].commands == ["systemctl enable haproxy", "systemctl restart haproxy"]


def test_a_guarded_command_is_skipped_when_a_change_in_the_step_settles_it():
    svc = Service("etcd", restart_on=("file:/etc/default/etcd",))
    check = Command("etcd answers", ("systemctl restart etcd",), "curl -sf http://x/health",
                    settled_by=(svc.key,))
    conf = File("/etc/default/etcd", "x\n")
    assert [c.what for c in engine.plan([conf, svc, check], ["absent", "enabled\nactive", "needed"])] == \
        ["write /etc/default/etcd", "restart etcd"]
    assert [c.what for c in engine.plan([conf, svc, check], [f"root:root:644\n{conf.digest}", "enabled\nactive",
                                                            "needed"])] == ["etcd answers"]


def test_stopped_service_is_started_and_enabled():
    (change,) = engine.plan([Service("etcd")], ["disabled\ninactive\n"])
    assert change.commands == ["systemctl enable etcd", "systemctl start etcd"]


def test_guarded_command_runs_only_when_its_check_fails():
    c = Command("locale present", ("localedef -i zh_CN -f UTF-8 zh_CN.UTF-8",), "locale -a | grep -q zh_CN")
    assert engine.plan([c], ["done\n"]) == []
    (change,) = engine.plan([c], ["needed\n"])
    assert change.commands == ["localedef -i zh_CN -f UTF-8 zh_CN.UTF-8"]


def test_fact_script_really_runs_and_parses(tmp_path):
    present = tmp_path / "present.conf"
    present.write_text("a=1\n")
    resources = [File(str(present), "a=1\n"), File(str(tmp_path / "missing.conf"), "b\n"),
                 Command("true holds", ("echo",), "true"), Command("false fails", ("echo",), "false"),
                 Directory(str(tmp_path))]
    out = subprocess.run(["bash", "-s"], input=engine.fact_script(resources), capture_output=True,
                         text=True, check=True).stdout
    facts = engine.parse_facts(out, len(resources))
    assert facts[0].split()[1] == resources[0].digest
    assert facts[1].strip() == "absent"
    assert [f.strip() for f in facts[2:4]] == ["done", "needed"]
    assert facts[4].strip() != "absent"


def test_the_root_script_travels_on_stdin_whole_and_never_on_a_command_line(tmp_path):
    """Provisioning writes configurations carrying passwords: any user of a node sees command lines in ps.
    The script goes to ``bash -s`` on stdin, in one read (invoke reads other streams a byte per 10 ms)."""
    from labcore import remote
    from provision.engine import Change, File, apply

    secret = "s3cret-Pa55"
    conn = LocalShell()
    target = tmp_path / "patroni.yml"
    me, mine = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    change = File(str(target), f"password: {secret}\n", owner=me, group=mine, mode="600").plan("absent", set())
    apply(conn, "node1", [change])
    assert target.read_text() == f"password: {secret}\n"
    line = conn.commands[0]
    assert line == "sudo -n bash -s"
    assert secret not in line and base64.b64encode(f"password: {secret}\n".encode()).decode() not in line

    script = "echo 'it''s' \"$((1+1))\"\necho done\n"
    stream = remote._WholeStream(script)
    assert stream.read(1) == script and stream.read(1) == ""         # what invoke asks: one byte


class LocalShell:
    """A connection that runs the root script with the local bash (no sudo), counting round trips."""

    def __init__(self):
        self.runs = 0
        self.commands: list[str] = []

    def run(self, command, in_stream=None, hide=True, warn=True):
        import subprocess
        import types

        self.runs += 1
        self.commands.append(command)
        assert command == "sudo -n bash -s"
        p = subprocess.run(["bash", "-s"], input=in_stream.read(1), capture_output=True, text=True)
        return types.SimpleNamespace(exited=p.returncode, stdout=p.stdout, stderr=p.stderr)


def test_apply_runs_every_change_in_one_round_trip_in_order(tmp_path):
    from provision.engine import Change, apply

    out = tmp_path / "order"
    changes = [Change(f"k{i}", f"step {i}", [f"echo {i} >> {out}"]) for i in range(3)]
    conn = LocalShell()
    apply(conn, "node1", changes)
    assert conn.runs == 1
    assert out.read_text().split() == ["0", "1", "2"]


def test_apply_names_the_failed_change_and_runs_nothing_after_it(tmp_path):
    from provision.engine import Change, ProvisionError, apply

    out = tmp_path / "order"
    changes = [Change("a", "write a", [f"echo a >> {out}"]),
               Change("b", "install b", ["echo 'E: Unable to locate package b' >&2", "false", f"echo b >> {out}"]),
               Change("c", "write c", [f"echo c >> {out}"])]
    with pytest.raises(ProvisionError, match=r"node1: install b failed \(exit 1\): E: Unable to locate package b"):
        apply(LocalShell(), "node1", changes)
    assert out.read_text().split() == ["a"]


def test_a_step_declares_only_the_hooks_it_needs_and_the_engine_gives_the_defaults():
    from provision.step import hooks, one_wave
    from provision.steps import STEPS

    assert hooks(STEPS["vip"]) == (one_wave, None, None)          # declares none of them
    order, settle, confirm = hooks(STEPS["patroni"])              # declares all three
    assert (order, settle, confirm) == (STEPS["patroni"].waves, STEPS["patroni"].settle, STEPS["patroni"].confirm)
    assert order is not one_wave and settle is not None and confirm is not None
