"""The secure profile on a lab of its own, after the main live tier is done with its lab.

The main lab is removed first (test_90 leaves only idle machines), then a second
instance is brought up from a topology derived from the session's: its own name,
subnet (the next /24) and bridge, `options.profile: secure`, its own LAB_DIR.
Cost: one `up` (from the main lab's package cache), a few probes, the audit, one
rotation, two drills: 207 s here with a warm cache. `LAB_SECURE_TOPOLOGY=<file>` (with `LAB_SECURE_DIR=<dir>`) uses that instance
instead of deriving one, and with `LAB_REUSE=1` an already provisioned one as it is.
The instance is removed at the end, whatever happened (`LAB_KEEP=1` keeps it).
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labcore import state as lab_state
from labcore.topology import load

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")


def derived_topology(src: Path, dest: Path) -> Path:
    """The session's topology moved to the next /24, renamed, with the secure profile."""
    data = yaml.safe_load(src.read_text())
    old = ipaddress.ip_network(data["lab"]["subnet"])
    new = ipaddress.ip_network(f"{old.network_address + 256}/{old.prefixlen}")
    old_prefix, new_prefix = str(old.network_address).rsplit(".", 1)[0] + ".", str(new.network_address).rsplit(".", 1)[0] + "."
    text = yaml.safe_dump(data).replace(old_prefix, new_prefix)
    data = yaml.safe_load(text)
    data["lab"]["name"] = (data["lab"]["name"] + "-sec")[:31]
    data["lab"]["bridge"] = (data["lab"]["bridge"] + "s")[:15]
    data.setdefault("options", {})["profile"] = "secure"
    dest.write_text(yaml.safe_dump(data))
    return dest


class Instance:
    def __init__(self, topology: Path, lab_dir: Path) -> None:
        self.env = {**os.environ, "LAB_TOPOLOGY": str(topology), "LAB_DIR": str(lab_dir), "COLUMNS": "300"}
        self.topology, self.lab_dir = topology, lab_dir

    def invoke(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run([INVOKE, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def python(self, code: str) -> str:
        """Run ``code`` in this instance's environment (the lab's modules read LAB_DIR/LAB_TOPOLOGY)."""
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.strip()


@pytest.fixture(scope="module")
def secure_lab(request, tmp_path_factory):
    given = os.environ.get("LAB_SECURE_TOPOLOGY")
    if not given and lab_state.load().is_up:
        # The main live tier is done with its lab (test_90 leaves idle machines): free the CPUs first.
        subprocess.run([INVOKE, "down"], cwd=ROOT, capture_output=True, timeout=600)
    base = tmp_path_factory.mktemp("secure")
    topo_file = Path(given) if given else derived_topology(load().path, base / "topology.yml")
    inst = Instance(topo_file, Path(os.environ.get("LAB_SECURE_DIR") or base / "lab"))
    if not given:
        # The main lab (removed above) leaves its package cache: the same packages, no download.
        inst.env.setdefault("INVOKE_LAB_APT_CACHE", str(lab_state.lab_dir(create=False) / "cache" / "apt"))
    state = inst.lab_dir / "state.json"
    reuse = os.environ.get("LAB_REUSE") == "1" and state.exists() and \
        json.loads(state.read_text()).get("phase") == "provisioned"
    if not reuse:
        inst.invoke("down", timeout=600)             # leftovers of an earlier run
        up = inst.invoke("up", timeout=1500)
    try:
        if not reuse:
            out = up.stdout + up.stderr
            assert up.returncode == 0, out[-3000:]
            assert "security profile: secure (options.profile in" in out
        yield inst, load(topo_file)
    finally:
        if os.environ.get("LAB_KEEP") != "1":
            inst.invoke("down", timeout=600)


def secrets(inst: Instance) -> dict:
    return yaml.safe_load((inst.lab_dir / "secrets.yml").read_text())


def pg_login(inst: Instance, topo, password: str) -> str:
    """'ok' or the server's refusal, from a connection made by this instance's own guard-checked client."""
    node = topo.postgres_nodes[0]
    return inst.python(
        "import psycopg2\n"
        "from labcore import guard; from labcore.topology import load\n"
        f"t = load(); guard.check('{node.address}', t)\n"
        f"try:\n psycopg2.connect(host='{node.address}', port={topo.ports.postgres}, user='postgres', "
        f"password={password!r}, dbname='postgres', connect_timeout=5).close(); print('ok')\n"
        "except psycopg2.OperationalError as e: print(str(e).strip().splitlines()[-1])\n")


def rest(inst: Instance, topo, member: str, method: str, path: str, body, auth=None) -> int:
    code = (f"from labcore import remote; from labcore.topology import load\nt = load()\n"
            f"print(remote.http(t, t.node('{member}').address, t.ports.patroni, '{path}', method='{method}', "
            f"body={body!r}, timeout=60, auth={auth!r})[0])\n")
    return int(inst.python(code))


def test_secrets_file_is_private_and_masked(secure_lab):
    inst, topo = secure_lab
    assert (inst.lab_dir / "secrets.yml").stat().st_mode & 0o777 == 0o600
    r = inst.invoke("secrets")
    assert r.returncode == 0 and "profile: secure" in r.stdout
    assert secrets(inst)["superuser"]["password"] not in r.stdout


def test_the_articles_password_is_refused_and_the_generated_one_logs_in(secure_lab):
    inst, topo = secure_lab
    assert "password authentication failed" in pg_login(inst, topo, "123456")
    assert pg_login(inst, topo, secrets(inst)["superuser"]["password"]) == "ok"


def test_restart_needs_credentials_and_works_with_them(secure_lab):
    inst, topo = secure_lab
    replica = topo.postgres_nodes[-1].member
    assert rest(inst, topo, replica, "POST", "/restart", {}) == 401
    s = secrets(inst)["restapi"]
    assert rest(inst, topo, replica, "POST", "/restart", {}, (s["username"], s["password"])) == 200
    # the health checks keepalived and haproxy use stay open
    assert rest(inst, topo, replica, "GET", "/replica", None) in (200, 503)


def test_an_anonymous_etcd_write_is_refused(secure_lab):
    inst, topo = secure_lab
    etcd = topo.etcd_nodes[0]
    key = base64.b64encode(b"/service/" + topo.cluster.scope.encode() + b"/leader").decode()
    out = inst.python(
        "from labcore import remote; from labcore.topology import load\nt = load()\n"
        f"print(remote.http(t, '{etcd.address}', t.ports.etcd_client, '/v3/kv/put', method='POST', "
        f"body={{'key': '{key}', 'value': 'eA=='}}))\n")
    assert "user name is empty" in out and not out.startswith("(200,"), out


def test_audit_is_clean(secure_lab):
    inst, _ = secure_lab
    r = inst.invoke("audit", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "findings: none" in r.stdout and "not observed" not in r.stdout


def test_drills_that_use_rest_and_etcd_pass_unchanged(secure_lab):
    """switchover: patronictl with the REST credentials from its config; sync-mode: PATCH /config
    with basic auth and the /sync key read from etcd with a token."""
    inst, _ = secure_lab
    for drill in ("switchover", "sync-mode"):
        r = inst.invoke("exercise", drill, "--auto", timeout=900)
        assert r.returncode == 0, f"{drill}:\n" + (r.stdout + r.stderr)[-3000:]


def test_rotation_changes_every_password_where_it_is_used(secure_lab):
    inst, topo = secure_lab
    before = secrets(inst)
    r = inst.invoke("up", "--rotate-secrets", timeout=1200)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    after = secrets(inst)
    assert all(after[k]["password"] != before[k]["password"] for k in before)
    assert "password authentication failed" in pg_login(inst, topo, before["superuser"]["password"])
    assert pg_login(inst, topo, after["superuser"]["password"]) == "ok"
    replica = topo.postgres_nodes[-1].member
    old, new = before["restapi"], after["restapi"]
    assert rest(inst, topo, replica, "POST", "/restart", {"patroni_lab_audit": 1}, (old["username"], old["password"])) == 401
    assert rest(inst, topo, replica, "POST", "/restart", {"patroni_lab_audit": 1}, (new["username"], new["password"])) == 400
    a = inst.invoke("audit", timeout=300)
    assert a.returncode == 0 and "findings: none" in a.stdout, a.stdout + a.stderr
    # Patroni still reaches etcd with its new password: the cluster has a leader and streaming replicas.
    status = json.loads(inst.python(
        "import json; from labcore import remote; from labcore.topology import load\nt = load()\n"
        "print(json.dumps(remote.http(t, t.postgres_nodes[0].address, t.ports.patroni, '/cluster')[1]))"))
    states = sorted((m["role"], m["state"]) for m in status["members"])
    assert states.count(("replica", "streaming")) == len(topo.postgres_nodes) - 1, states
