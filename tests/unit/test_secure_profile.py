"""The security profiles: which one a lab gets, its secrets file, and what each renders
(checked by the same real tools as the article's templates)."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
import yaml

import provision
from labcore import credentials
from labcore import state as lab_state
from labcore.topology import ROOT, TopologyError, parse
from provision.engine import Command

from test_provision_support import loopback_topology, topology
from test_templates_tools import (ctx_for, etcd_listener, fake_bin_dir, files_of,  # noqa: F401 (fixture)
                                  multicast_interface, validate_patroni)

PROFILES = ("article", "secure")


@pytest.fixture(autouse=True)
def lab_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "lab"
    monkeypatch.setenv("LAB_DIR", str(d))
    return d


def creds_for(topo, profile: str) -> credentials.Credentials:
    return credentials.build(topo, profile)


# --- which profile ------------------------------------------------------------

def test_docker_defaults_to_article_hosts_to_secure_and_the_topology_decides_when_it_says():
    topo = topology()
    assert credentials.choose(topo, "docker")[0] == "article"
    profile, why = credentials.choose(topo, "hosts")
    assert profile == "secure" and "hosts provider" in why
    assert credentials.choose(topology(profile="article"), "hosts") == ("article", "options.profile in topology.yml")
    assert credentials.choose(topology(profile="secure"), "docker")[0] == "secure"


def test_an_unknown_profile_is_one_line_naming_the_key():
    data = yaml.safe_load((ROOT / "topology.yml").read_text())
    data["options"]["profile"] = "paranoid"
    with pytest.raises(TopologyError, match=r"^options.profile: 'paranoid' must be one of article, secure$"):
        parse(data)


def test_switching_profile_on_a_provisioned_lab_is_refused_before_anything_is_contacted(lab_dir):
    from lab import lifecycle
    lab_state.save(lab_state.State(phase="provisioned", provider="docker", platform="debian12", profile="article"))
    with pytest.raises(lifecycle.LabError, match="provisioned with the article profile and would now get secure"):
        lifecycle.provision(topology(profile="secure"), lambda m: None)
    assert not credentials.secrets_path().exists()


# --- the secrets file -------------------------------------------------------------

def test_secrets_are_generated_once_mode_0600_and_differ_from_the_article(lab_dir):
    topo = topology(profile="secure")
    first = creds_for(topo, "secure")
    p = credentials.secrets_path()
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert creds_for(topo, "secure") == first                       # read back, not regenerated
    pw = [first.superuser["password"], first.replication["password"], first.restapi["password"],
          first.etcd["password"], first.etcd_root["password"]]
    assert len(set(pw)) == 5 and "123456" not in pw and all(len(x) >= 20 for x in pw)
    assert first.superuser["username"] == "postgres" and first.replication["username"] == "repl"


def test_the_article_profile_keeps_the_article_passwords_and_writes_no_secrets(lab_dir):
    c = creds_for(topology(), "article")
    assert c.superuser["password"] == c.replication["password"] == "123456"
    assert c.restapi is None and c.etcd is None and not credentials.secrets_path().exists()


def test_secrets_are_masked_unless_asked(lab_dir):
    c = creds_for(topology(profile="secure"), "secure")
    masked = "\n".join(credentials.describe(c, show=False))
    assert c.superuser["password"] not in masked and "postgres / ********" in masked
    assert c.restapi["password"] in "\n".join(credentials.describe(c, show=True))


def test_a_damaged_secrets_file_is_named_in_one_line(lab_dir):
    creds_for(topology(profile="secure"), "secure")
    credentials.secrets_path().write_text("superuser: {username: postgres}\n")
    with pytest.raises(credentials.CredentialsError, match="secrets.yml: must hold superuser"):
        credentials.read_secrets()


def test_rotation_changes_postgres_first_then_patroni_then_etcd_with_passwords_only_on_stdin(lab_dir, monkeypatch):
    from lab import rotation
    topo = topology(profile="secure")
    old = creds_for(topo, "secure")
    lab_state.save(lab_state.State(phase="provisioned", provider="docker", platform="debian12", profile="secure"))
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(rotation, "_leader", lambda t: "node2")
    monkeypatch.setattr(rotation, "_until_patroni_reloaded", lambda t, auth, report: calls.append(("reloaded", auth[1])))
    monkeypatch.setattr(rotation, "_run_script", lambda t, node, script: calls.append((node, script)) or "")
    monkeypatch.setattr(provision, "run", lambda t, **kw: calls.append(
        ("provision", ",".join(kw["steps"]) + ":" + kw["credentials"].restapi["password"])))
    new = rotation.rotate(topo, lambda m: None)
    assert [c[0] for c in calls] == ["node2", "provision", "reloaded", "node4"]
    sql, etcd = calls[0][1], calls[3][1]
    assert calls[2][1] == new["restapi"]["password"]
    assert f"ALTER ROLE \"postgres\" PASSWORD '{new['superuser']['password']}'" in sql
    assert f"ALTER ROLE \"repl\" PASSWORD '{new['replication']['password']}'" in sql
    assert calls[1][1] == f"patroni,standby:{new['restapi']['password']}"
    assert f"ETCDCTL_USER=root:{old.etcd_root['password']}" in etcd          # the old root logs in
    assert f"user passwd patroni" in etcd and new["etcd"]["password"] in etcd
    assert credentials.read_secrets() == new and stat.S_IMODE(credentials.secrets_path().stat().st_mode) == 0o600
    for k in new:
        assert new[k]["password"] != getattr(old, k)["password"]
    r = subprocess.run(["bash", "-n"], input=etcd, text=True, capture_output=True)
    assert r.returncode == 0, r.stderr


# --- what each profile renders ------------------------------------------------------------

def member_config(profile: str, node: str = "node2", platform: str = "debian12") -> str:
    topo = topology(profile=profile)
    ctx = ctx_for(topo, node, platform)
    ctx = type(ctx)(ctx.topo, ctx.node, ctx.platform, ctx.facts, creds_for(topo, profile))
    return files_of("patroni", ctx)["/etc/patroni/10-cluster.yml"]


def test_secure_member_config_has_scram_auth_and_no_open_network():
    text = member_config("secure")
    conf = yaml.safe_load(text)
    hba = conf["postgresql"]["pg_hba"]
    assert hba == ["local all all peer", "host all all 127.0.0.1/32 scram-sha-256",
                   "host replication repl 192.168.234.0/24 scram-sha-256",
                   "host all all 192.168.234.0/24 scram-sha-256"]
    assert conf["postgresql"]["parameters"]["password_encryption"] == "scram-sha-256"
    assert "md5" not in text and "0.0.0.0/0" not in text and "trust" not in text and "123456" not in text
    assert set(conf["restapi"]["authentication"]) == {"username", "password"}
    assert conf["restapi"]["allowlist"] == ["127.0.0.1/32", "192.168.234.0/24"]
    assert conf["etcd3"]["username"] == "patroni" and conf["etcd3"]["password"]


def test_article_member_config_keeps_the_articles_lesson():
    conf = yaml.safe_load(member_config("article"))
    assert "host all all 0.0.0.0/0 md5" in conf["postgresql"]["pg_hba"]
    assert conf["postgresql"]["authentication"]["superuser"]["password"] == "123456"
    assert "authentication" not in conf["restapi"] and "username" not in conf["etcd3"]


def test_a_control_host_outside_the_subnet_is_admitted_by_its_own_address():
    topo = topology(profile="secure")
    assert credentials.trusted_networks(topo, "10.9.8.7") == ("192.168.234.0/24", "10.9.8.7/32")
    assert credentials.trusted_networks(topo, "192.168.234.1") == ("192.168.234.0/24",)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("platform", ["debian12", "el7"])
@pytest.mark.parametrize("node", ["node1", "node3", "node4"])
def test_every_member_config_passes_patroni_validate_config(profile, platform, node, tmp_path, etcd_listener):
    from provision import platforms
    topo = loopback_topology(profile=profile, replicatefrom={"pg3": "pg2"})
    ctx = ctx_for(topo, node, platform, pg_bin=str(fake_bin_dir(tmp_path, platforms.get(platform).pg_version)))
    ctx = type(ctx)(ctx.topo, ctx.node, ctx.platform, ctx.facts, creds_for(topo, profile))
    conf = tmp_path / "patroni"
    conf.mkdir()
    steps = ("standby",) if node == "node4" else ("patroni", "watchdog", "vip", "cascading")
    for step in steps:
        for path, content in files_of(step, ctx).items():
            if path.startswith("/etc/patroni/"):
                (conf / Path(path).name).write_text(content)
    r = validate_patroni(conf)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("scram-sha-256" in (conf / "10-cluster.yml").read_text()) is (profile == "secure")


@pytest.mark.parametrize("profile", PROFILES)
def test_haproxy_and_keepalived_configs_pass_their_tools_in_both_profiles(profile, tmp_path):
    iface = multicast_interface()
    topo = topology(profile=profile)
    ctx = ctx_for(topo, "node1", "debian12", iface=iface, keepalived_dir=str(tmp_path))
    ctx = type(ctx)(ctx.topo, ctx.node, ctx.platform, ctx.facts, creds_for(topo, profile))
    files = files_of("keepalived", ctx) | files_of("haproxy", ctx)
    for path, content in files.items():
        if path.startswith(str(tmp_path)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content)
    r = subprocess.run(["keepalived", "-t", "-f", str(tmp_path / "keepalived.conf")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "haproxy.cfg").write_text(files["/etc/haproxy/haproxy.cfg"])
    r = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # The health checks stay plain GETs: with authentication on, Patroni still answers them.
    assert "option httpchk GET /replica" in files["/etc/haproxy/haproxy.cfg"]


@pytest.mark.parametrize("platform", ["debian12", "el7"])
def test_etcd_auth_runs_once_on_the_first_member_and_its_script_parses(platform):
    topo = topology(profile="secure")
    c = creds_for(topo, "secure")
    changes = provision.preview(topo, "etcd", "node4", platform, credentials=c)
    auth = next(ch for ch in changes if ch.what.startswith("etcd authentication on"))
    script = "\n".join(auth.commands)
    r = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert script.rstrip().endswith("-readwrite") if platform == "el7" else script.rstrip().endswith("auth enable")
    # the password is never an argument of etcdctl (other users can list arguments)
    for line in auth.commands[1:]:
        assert c.etcd["password"] not in line and c.etcd_root["password"] not in line
    assert not any(ch.what.startswith("etcd authentication")
                   for ch in provision.preview(topology(), "etcd", "node4", platform))


def test_etcd_auth_unless_check_fails_on_a_node_without_auth():
    """The guard of the auth command, run by bash against an etcdctl that accepts anonymous reads:
    it must say 'needed', otherwise auth would never be switched on."""
    topo = topology(profile="secure")
    ctx = ctx_for(topo, "node4", "debian12")
    ctx = type(ctx)(ctx.topo, ctx.node, ctx.platform, ctx.facts, creds_for(topo, "secure"))
    from provision.steps import etcd
    cmd = etcd._auth(ctx)
    assert isinstance(cmd, Command)
    anonymous_ok = f"etcdctl() {{ return 0; }}; export -f etcdctl; {cmd.probe()}"
    assert subprocess.run(["bash", "-c", anonymous_ok], capture_output=True, text=True).stdout.strip() == "needed"
    auth_on = ("etcdctl() { [ -n \"$ETCDCTL_USER\" ]; }; export -f etcdctl; " + cmd.probe())
    assert subprocess.run(["bash", "-c", auth_on], capture_output=True, text=True).stdout.strip() == "done"


def test_secure_firewall_is_open_ports_limited_to_the_lab_even_if_the_topology_says_article():
    topo = topology(profile="secure", firewall="article")
    changes = provision.preview(topo, "firewall", "node1", "debian12", credentials=creds_for(topo, "secure"))
    assert "write /etc/nftables.conf" in {c.what for c in changes}
    assert not any("disable" in c.what for c in changes)


# --- invoke audit: exit status by profile -----------------------------------------------------

@pytest.mark.parametrize("profile,findings,unobserved,code", [
    ("article", [("default-password", "postgres on node1")], [], 0),
    ("secure", [("etcd-unauthenticated-write", "node4")], [], 1),
    ("secure", [], ["PostgreSQL on node3: no answer"], 1),     # not seen is not clean
    ("secure", [], [], 0),
])
def test_audit_exit_status_follows_the_profile(profile, findings, unobserved, code, monkeypatch, capsys):
    from invoke import Context, Exit
    from lab import audit as lab_audit
    from lab.cli import security

    lab_state.save(lab_state.State(phase="provisioned", provider="docker", platform="debian12", profile=profile))
    monkeypatch.setenv("LAB_TOPOLOGY", str(ROOT / "topology.yml"))
    monkeypatch.setattr(lab_audit, "run", lambda topo: lab_audit.Report(profile, list(findings), [], list(unobserved)))
    if code:
        with pytest.raises(Exit) as e:
            security.audit(Context())
        assert e.value.code == code
    else:
        security.audit(Context())
    out = capsys.readouterr().out
    for name, _ in findings:
        assert name in out
    assert ("findings: none" in out) is (not findings)


def test_audit_refuses_before_the_lab_is_provisioned(monkeypatch):
    from invoke import Context, Exit
    from lab.cli import security
    with pytest.raises(Exit) as e:
        security.audit(Context())
    assert e.value.code == 2 and "invoke up" in str(e.value)


def test_drill_pages_say_where_the_secure_profile_changes_what_a_trainee_types():
    from lab.exercises import DRILLS
    from lab.exercises.pages import page, profile_notes
    assert profile_notes(DRILLS["sync-mode"].commands) == ["page_profile_sql", "page_profile_etcd", "page_profile_ctl"]
    assert profile_notes(["on node1: sudo systemctl stop patroni"]) == ["page_profile_same"]
    assert profile_notes(["curl -s -XPOST http://127.0.0.1:8008/restart"]) == ["page_profile_rest"]
    from lab.i18n import language
    with language("en"):
        text = page(DRILLS["sync-mode"])
    assert "## Security profile" in text and "etcdctl --user patroni" in text
    with language("zh"):
        assert "## 安全配置档" in page(DRILLS["sync-mode"])


def test_the_live_secure_lab_derives_a_valid_topology_of_its_own(tmp_path):
    """tests/live/test_95 builds its lab from this: it must load, and share nothing with the main lab."""
    import importlib.util
    from labcore.topology import load
    spec = importlib.util.spec_from_file_location("t95", ROOT / "tests" / "live" / "test_95_secure_profile.py")
    t95 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t95)
    main = load(ROOT / "topology.yml")
    derived = load(t95.derived_topology(ROOT / "topology.yml", tmp_path / "topology.yml"))
    assert derived.options["profile"] == "secure"
    assert str(derived.subnet) == "192.168.235.0/24" and derived.name != main.name and derived.bridge != main.bridge
    assert not set(derived.addresses) & set(main.addresses)


@pytest.mark.parametrize("exit_code,profile", [(0, "secure"), (1, "article"), (2, None)])
def test_a_hosts_lab_whose_state_is_gone_is_judged_by_the_config_on_its_first_member(exit_code, profile, monkeypatch):
    """`down` on the hosts provider forgets the state but the cluster stays: grep for the secure
    profile's allowlist in Patroni's config (0 found, 1 not found, 2 no config yet)."""
    from types import SimpleNamespace
    from labcore import remote
    from lab import lifecycle
    seen = []
    monkeypatch.setattr(remote, "connect", lambda topo, node: SimpleNamespace(
        run=lambda cmd, **kw: seen.append((node, cmd)) or SimpleNamespace(exited=exit_code)))
    assert lifecycle.deployed_profile(topology()) == profile
    assert seen == [("node1", "sudo -n grep -c '^  allowlist:' /etc/patroni/10-cluster.yml")]


def test_a_hosts_lab_provisioned_article_is_not_silently_secured(lab_dir, monkeypatch):
    from lab import lifecycle
    lab_state.save(lab_state.State(phase="created", provider="hosts", platform="debian12"))
    monkeypatch.setattr(lifecycle, "deployed_profile", lambda topo: "article")
    with pytest.raises(lifecycle.LabError, match="provisioned with the article profile and would now get secure"):
        lifecycle.provision(topology(), lambda m: None)
    assert not credentials.secrets_path().exists()
