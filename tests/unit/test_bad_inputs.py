"""Every bad input through the `invoke` program: one line naming what is wrong, the
exit code of the convention (labcore.exitcodes: 2 = refused, nothing changed), nothing created,
and nothing asked of Docker, a hypervisor or the network.

The commands run in this process through Invoke's own Program (invoke_cli.py);
test_the_real_program_says_the_same shows, on a sample, that the installed `invoke`
says exactly the same."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import invoke_cli
from labcore import exitcodes, topology

NAME = "plab-badinput"          # never brought up: anything carrying this name is a leak


def lab_text() -> str:
    """The shipped topology moved to TEST-NET-2 under its own name (never the reserved lab)."""
    return (topology.DEFAULT_PATH.read_text().replace("192.168.234.", "198.51.100.")
            .replace("name: patroni-lab", f"name: {NAME}").replace("bridge: plab0", "bridge: plabbad"))


def edited(old: str, new: str) -> str:
    text = lab_text()
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unit_guard, execute):
    """``run(*args, text=, env=, path=) -> (code, out, err)``: `invoke *args` on a topology file
    ``text`` (the test lab by default), with extra environment ``env`` and PATH ``path``."""
    lab_dir = tmp_path / "lab"

    def invoke(*args: str, text: str | None = None, env: dict[str, str] | None = None,
               path: str | None = None) -> tuple[int, str, str]:
        f = tmp_path / "topology.yml"
        f.write_text(text if text is not None else lab_text())
        with monkeypatch.context() as mp:
            mp.setenv("LAB_TOPOLOGY", str(f))
            mp.setenv("LAB_DIR", str(lab_dir))
            for k, v in (env or {}).items():
                mp.setenv(k, v)
            if path is not None:
                mp.setenv("PATH", path)
            said = execute(list(args), mp)
        return said.code, said.out, said.err.strip()

    yield invoke
    assert not lab_dir.exists(), "a refused command created the lab directory"
    # Nothing asked Docker, a hypervisor or the network what exists: the guard records every
    # attempt, in this process and (through the stubs on PATH) in any process it started.
    assert unit_guard.logged() == []


@pytest.fixture
def run(tmp_path, monkeypatch, capfd, unit_guard):
    yield from _runner(tmp_path, monkeypatch, unit_guard,
                       lambda args, mp: invoke_cli.in_process(args, mp, capfd))


@pytest.fixture
def run_real(tmp_path, monkeypatch, unit_guard):
    """The same, through the installed `invoke` program in a child process."""
    yield from _runner(tmp_path, monkeypatch, unit_guard, lambda args, mp: invoke_cli.real(args))


def one_line(code: int, out: str, err: str, expected_code: int = exitcodes.REFUSED) -> str:
    assert code == expected_code, (code, out, err)
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


# --- topology.yml ---------------------------------------------------------------------------

def test_a_key_given_twice_is_refused_quoting_the_line(run):
    text = edited("  postgres: 5432\n", "  postgres: 5432\n  postgres: 5433\n")
    err = one_line(*run("up", text=text))
    line = text.splitlines().index("  postgres: 5433") + 1
    assert err == (f"error: topology.yml line {line} (`postgres: 5433`): postgres given twice in one "
                   f"mapping (first on line {line - 1}); keep one")


def test_a_leading_zero_password_is_not_read_as_octal(run):
    err = one_line(*run("up", text=edited('postgres, password: "123456"}', "postgres, password: 0123}")))
    assert re.fullmatch(r"error: topology.yml line \d+ \(`superuser: \{username: postgres, password: 0123\}`\): "
                        r"cluster.superuser.password: YAML reads 0123 as the number 83, not as the text you "
                        r'typed; write it in quotes: password: "0123"', err), err


def test_off_where_a_word_from_a_list_is_expected(run):
    err = one_line(*run("up", text=edited("firewall: article ", "firewall: off ")))
    assert re.fullmatch(r'error: topology.yml line \d+ \(`firewall: off`\): options.firewall: YAML reads off '
                        r'as the boolean false, not as the text you typed; write it in quotes: firewall: "off"',
                        err), err


def test_yes_where_a_boolean_is_expected_is_fine():
    f = lab_text().replace("synchronous_mode: false", "synchronous_mode: yes")
    from labcore import strict_yaml
    assert topology.parse(strict_yaml.load(f)).options["synchronous_mode"] is True


def test_a_quoted_port_is_reported_as_a_string(run):
    err = one_line(*run("up", text=edited("postgres: 5432", 'postgres: "5432"')))
    assert re.fullmatch(r"error: topology.yml line \d+ \(`postgres: \"5432\"`\): ports.postgres: "
                        r"must be a number, got the string '5432'", err), err


def test_role_etcd_points_at_etcd_members(run):
    err = one_line(*run("up", text=edited("roles: [standby]", "roles: [standby, etcd]")))
    assert err.endswith("nodes[3].roles: 'etcd' is not a node role: list the node under etcd.members instead "
                        "(roles: postgres, haproxy, standby)"), err


def test_an_unknown_key_gets_a_suggestion(run):
    err = one_line(*run("status", text=edited("  haproxy_stats: 7000", "  haproxy_stat: 7000")))
    assert err.endswith("ports.haproxy_stat: unknown key 'haproxy_stat' (did you mean haproxy_stats?)"), err


# --- Invoke settings ---------------------------------------------------------------------------

def test_an_env_setting_invoke_cannot_cast_is_one_line_not_a_traceback(run):
    err = one_line(*run("status", env={"INVOKE_LAB_MEMORY": "lots"}))
    assert err == "error: INVOKE_LAB_MEMORY=lots: must be a whole number of MiB, got the string 'lots'"


def test_a_misspelt_env_setting_is_not_ignored(run):
    err = one_line(*run("up", env={"INVOKE_LAB_PROVDER": "docker"}))
    assert err == "error: INVOKE_LAB_PROVDER: unknown setting 'INVOKE_LAB_PROVDER' (did you mean INVOKE_LAB_PROVIDER?)"


def test_an_env_value_of_the_right_type_but_out_of_range(run):
    err = one_line(*run("status", env={"INVOKE_LAB_CPUS": "0"}))
    assert err == "error: INVOKE_LAB_CPUS=0: must be 1-256 vCPUs, got 0"


def test_an_unknown_provider_in_the_environment(run):
    err = one_line(*run("up", env={"INVOKE_LAB_PROVIDER": "dockr"}))
    assert err == "error: INVOKE_LAB_PROVIDER=dockr: unknown provider 'dockr' (did you mean docker?)"


def test_a_bad_value_in_a_config_file(run, tmp_path):
    cfg = tmp_path / "extra.yaml"
    cfg.write_text("lab:\n  ssh_wait: soon\n")
    err = one_line(*run("-f", str(cfg), "status"))
    assert err == "error: invoke.yaml lab.ssh_wait: must be a number of seconds, got the string 'soon'"


def test_an_unknown_key_in_a_config_file(run, tmp_path):
    cfg = tmp_path / "extra.yaml"
    cfg.write_text("lab:\n  memroy: 2048\n")
    err = one_line(*run("-f", str(cfg), "status"))
    assert err == "error: invoke.yaml lab.memroy: unknown setting 'memroy' (did you mean memory?)"


def test_every_shipped_setting_has_a_check():
    import yaml
    from lab import settings
    shipped = yaml.safe_load((topology.ROOT / "invoke.yaml").read_text())["lab"]
    assert set(shipped) == set(settings.SCHEMA)
    assert settings.validate(shipped, environ={}) == shipped


# --- names -------------------------------------------------------------------------------------

def test_an_unknown_node_is_named_before_the_lab_state(run):
    err = one_line(*run("ssh", "nod2"))
    assert err == "error: ssh: unknown node 'nod2' (did you mean node2?)"
    err = one_line(*run("ssh", "node9"))       # equally close to every node: none is singled out
    assert err == "error: ssh: unknown node 'node9' (known: node1, node2, node3, node4, pg1, pg2, pg3, pg4)"


def test_an_unknown_step_gets_a_suggestion(run):
    err = one_line(*run("provision", "--step", "etdc"))
    assert err == "error: unknown step 'etdc' (did you mean etcd?)"


def test_an_unknown_provider_option(run):
    err = one_line(*run("up", "--provider", "vmware"))
    assert err.startswith("error: provider: unknown provider 'vmware'"), err


# --- providers missing on this host ------------------------------------------------------------

def path_without(*tools: str) -> str:
    """PATH with only the directories that hold none of ``tools``."""
    dirs = [d for d in os.environ["PATH"].split(os.pathsep)
            if d and not any(Path(d, t).exists() for t in tools)]
    return os.pathsep.join(dirs)


@pytest.mark.skipif(not Path("/usr/share/rubygems-integration").exists() and not os.environ.get("CI"),
                    reason="needs vagrant's insecure key (scripts/bootstrap.sh installs vagrant)")
def test_virtualbox_missing_gives_an_install_hint(run):
    code, out, err = run("up", "--provider", "virtualbox", path=path_without("VBoxManage"))
    one_line(code, out, err)
    assert err.startswith("error: virtualbox: VirtualBox is not installed (no VBoxManage on PATH): install it "
                          "from https://www.virtualbox.org/wiki/Linux_Downloads"), err
    assert out.startswith("provider virtualbox (from --provider)")


def test_pulumi_missing_gives_an_install_hint(run):
    err = one_line(*run("up", "--provider", "pulumi", path=path_without("pulumi")))
    assert err.startswith("error: pulumi: the Pulumi CLI is not on PATH: install the Pulumi CLI"), err


def test_libvirt_missing_gives_an_install_hint(run, monkeypatch, tmp_path):
    from lab.providers import vagrant
    # whether or not libvirtd runs on this host (the command runs in this process)
    monkeypatch.setattr(vagrant, "LIBVIRT_SOCKETS", (str(tmp_path / "no-libvirt-sock"),))
    err = one_line(*run("up", "--provider", "libvirt"))
    assert "libvirtd is not running" in err and "scripts/bootstrap-vm.sh" in err, err


# --- order -------------------------------------------------------------------------------------

def test_wrong_order_exits_2(run):
    err = one_line(*run("ssh", "node1"))
    assert err == "error: cannot ssh to node1: the lab is not up: run `invoke up` first"


def test_status_of_an_absent_lab_is_not_an_error(run):
    code, out, err = run("status")
    assert code == exitcodes.OK and "the lab is not up" in out and not err


def test_an_unknown_drill_gets_a_suggestion_not_thirty_names(run):
    err = one_line(*run("exercise", "etcd-dwn", "--auto"))
    assert err == "exercise: unknown drill 'etcd-dwn' (did you mean etcd-down?)"


# --- the in-process runs above say what the installed program says ---------------------------

@pytest.mark.parametrize("args, given", [
    (("up",), {"text": "key twice"}),                          # refused by the topology's schema
    (("status",), {"env": {"INVOKE_LAB_MEMORY": "lots"}}),     # refused while tasks.py loads
    (("ssh", "nod2"), {}),                                     # refused by a task
    (("status",), {}),                                         # not refused: exit 0 and a report
], ids=["topology", "environment", "task", "no-error"])
def test_the_real_program_says_the_same(run, run_real, args, given):
    if given.get("text") == "key twice":
        given = {"text": edited("  postgres: 5432\n", "  postgres: 5432\n  postgres: 5433\n")}
    real = run_real(*args, **given)
    assert real == run(*args, **given)
    assert real[0] in (exitcodes.OK, exitcodes.REFUSED) and (real[1] or real[2]), real
