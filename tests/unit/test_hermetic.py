"""The unit tier's guard (hermetic.py, applied by conftest.py) refuses what it says it refuses,
names the test, and lets through what the tier needs: the loopback, local tools, fakes."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hermetic

HERE = Path(__file__).parent


def refused(guard: hermetic.Guard, action) -> str:
    """Run ``action``, which must be refused; return the message and forget the refusal."""
    with pytest.raises(hermetic.Refused) as e:
        action()
    assert guard.take(), "the refusal was not recorded"
    return str(e.value)


def test_a_connection_beyond_the_loopback_is_refused_naming_the_test(unit_guard):
    message = refused(unit_guard, lambda: socket.create_connection(("192.0.2.1", 443), timeout=1))
    assert message.startswith(f"{unit_guard.test} tried to connect to ('192.0.2.1', 443)"), message
    assert "tests/live" in message


def test_the_docker_socket_and_other_daemon_sockets_are_refused(unit_guard):
    for path in ("/var/run/docker.sock", "/run/docker.sock", "/run/libvirt/libvirt-sock"):
        s = socket.socket(socket.AF_UNIX)
        try:
            assert path in refused(unit_guard, lambda: s.connect(path))
        finally:
            s.close()


def test_the_loopback_and_a_unix_socket_of_the_test_are_allowed(unit_guard, tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        socket.create_connection(server.getsockname(), timeout=5).close()
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
    assert unit_guard.logged() == []


def test_a_host_name_is_not_resolved_but_addresses_and_localhost_are(unit_guard):
    assert "example.org" in refused(unit_guard, lambda: socket.getaddrinfo("example.org", 80))
    assert socket.getaddrinfo("127.0.0.1", 80) and socket.getaddrinfo("localhost", 80)


@pytest.mark.parametrize("argv", [
    ["docker", "ps"], ["vagrant", "up"], ["virsh", "list"], ["ssh", "node1", "true"],
    [sys.executable, "-m", "pip", "download", "psycopg2-binary"], ["pip", "install", "x"],
    ["sh", "-c", "true && docker info"], ["bash", "-c", "sudo -E virsh list"],
], ids=lambda a: " ".join(Path(a[0]).name if i == 0 else w for i, w in enumerate(a)))
def test_the_tools_that_reach_machines_docker_or_the_network_are_not_started(unit_guard, argv):
    assert "tried to run" in refused(unit_guard, lambda: subprocess.run(argv, capture_output=True))


def test_a_shell_may_ask_whether_a_tool_exists_and_run_local_tools(unit_guard):
    r = subprocess.run(["sh", "-c", "command -v docker >/dev/null; echo ok"], capture_output=True, text=True)
    assert r.stdout == "ok\n"
    assert subprocess.run(["bash", "-n", "/dev/null"]).returncode == 0
    assert unit_guard.logged() == []


def test_a_fake_the_test_wrote_may_be_run_under_a_blocked_name(unit_guard, tmp_path):
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho fake docker\n")
    fake.chmod(0o755)
    assert subprocess.run([str(fake)], capture_output=True, text=True).stdout == "fake docker\n"
    assert unit_guard.logged() == []


def test_a_process_the_test_starts_meets_a_stub_that_fails_and_is_recorded(unit_guard):
    # a child process is out of the guard's reach: the stub first on PATH answers instead
    r = subprocess.run(["sh", "-c", "x=docker; $x ps -a"], capture_output=True, text=True)
    assert r.returncode == hermetic.STUB_EXIT and "docker is not run by unit tests" in r.stderr
    assert unit_guard.take() == ["docker ps -a"]


def test_the_shell_settings_and_the_lab_directory_are_the_tests_own(unit_guard):
    assert not [k for k in os.environ if k.startswith(("INVOKE_", "VAGRANT_DEFAULT", "LAB_TOPOLOGY"))]
    lab = Path(os.environ["LAB_DIR"])
    assert not lab.exists() and os.path.realpath(lab).startswith(unit_guard.tmp_root)
    assert os.environ["DOCKER_HOST"] == hermetic.NO_DOCKER


def test_a_postgres_connection_is_refused(unit_guard):
    import psycopg2
    assert "PostgreSQL" in refused(unit_guard, lambda: psycopg2.connect(host="192.0.2.1", dbname="postgres"))


def test_a_refusal_the_code_swallowed_still_fails_the_test(tmp_path):
    """In a pytest of its own: a test that catches the refusal, and one whose child process
    calls docker, both end in an error naming them."""
    for name in ("conftest.py", "hermetic.py"):
        (tmp_path / name).write_text((HERE / name).read_text())
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent("""
        import subprocess

        def test_swallows():
            try:
                subprocess.run(["docker", "info"])
            except Exception:
                pass

        def test_child_calls_docker():
            subprocess.run(["sh", "-c", "x=docker; $x info"], capture_output=True)
    """))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path),
                        f"--basetemp={tmp_path / 'inner-tmp'}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "2 passed, 2 errors" in out, out
    for test in ("test_swallows", "test_child_calls_docker"):
        assert f"test_leaky.py::{test} tried what the unit tier refuses" in out, out
    assert "docker info" in out


def test_a_child_given_an_environment_of_its_own_still_meets_the_stubs(unit_guard):
    r = subprocess.run(["sh", "-c", "x=vagrant; $x status"], env={"PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True)
    assert r.returncode == hermetic.STUB_EXIT, r.stderr
    assert unit_guard.take() == ["vagrant status"]


def test_a_fake_first_on_a_childs_own_path_stays_ahead_of_the_stubs(unit_guard, tmp_path):
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho fake pulumi\n")
    fake.chmod(0o755)
    r = subprocess.run(["sh", "-c", "pulumi; x=docker; $x ps"], env={"PATH": f"{fake.parent}:/usr/bin:/bin"},
                       capture_output=True, text=True)
    assert r.stdout == "fake pulumi\n" and r.returncode == hermetic.STUB_EXIT, (r.stdout, r.stderr)
    assert unit_guard.take() == ["docker ps"]
