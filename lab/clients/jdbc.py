"""The JDBC side of article §7.1: a JRE, the PostgreSQL driver, and a probe.

The probe is ``MultiHostProbe.java`` next to this file, run by Java's
single-file source launcher, so there is nothing to build. The JRE and the
driver come from Debian packages installed on the control host by
:func:`ensure_jdbc`, which checks first and installs only what is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from labcore import state as lab_state
from lab.clients.multihost import Landing, guard_hosts, member_endpoints, url_hosts
from labcore.topology import Topology

PROBE_SOURCE = Path(__file__).with_name("MultiHostProbe.java")
DEFAULT_JAR = Path("/usr/share/java/postgresql.jar")
JRE_PACKAGE = "default-jre-headless"
DRIVER_PACKAGE = "libpostgresql-jdbc-java"
# pgjdbc 42.x names; "master"/"slave" are old aliases the driver still accepts.
TARGET_SERVER_TYPES = ("any", "primary", "secondary", "preferSecondary", "preferPrimary",
                       "master", "slave", "preferSlave")

Runner = Callable[..., subprocess.CompletedProcess]


class JdbcUnavailable(RuntimeError):
    """Java or the JDBC driver is missing and cannot be installed here; the message says what to do."""


def driver_jar() -> Path:
    """The driver jar: ``$LAB_JDBC_JAR`` if set (non-Debian hosts), else Debian's path."""
    return Path(os.environ.get("LAB_JDBC_JAR") or DEFAULT_JAR)


def jdbc_url(topo: Topology, target_server_type: str = "primary", *, load_balance: bool = False,
             dbname: str = "postgres") -> str:
    """``jdbc:postgresql://h1:p,h2:p,.../db?targetServerType=...`` from the topology."""
    if target_server_type not in TARGET_SERVER_TYPES:
        raise ValueError(f"targetServerType={target_server_type!r} is not one of "
                         f"{', '.join(TARGET_SERVER_TYPES)}")
    hosts = ",".join(f"{a}:{p}" for a, p in member_endpoints(topo))
    query = f"targetServerType={target_server_type}"
    if load_balance:
        query += "&loadBalanceHosts=true"
    return f"jdbc:postgresql://{hosts}/{dbname}?{query}"


def missing_packages(*, which: Callable[[str], str | None] = shutil.which,
                     jar: Path | None = None) -> list[str]:
    """The Debian packages still needed: none if a ``java`` and the driver jar are present."""
    missing = []
    if which("java") is None:
        missing.append(JRE_PACKAGE)
    if not (jar or driver_jar()).is_file():
        missing.append(DRIVER_PACKAGE)
    return missing


def ensure_jdbc(*, run: Runner = subprocess.run, which: Callable[[str], str | None] = shutil.which,
                is_root: Callable[[], bool] = lambda: os.geteuid() == 0,
                jar: Path | None = None) -> list[str]:
    """Install what :func:`missing_packages` reports; return the packages installed (may be [])."""
    missing = missing_packages(which=which, jar=jar)
    if not missing:
        return []
    manual = f"apt-get install -y {' '.join(missing)}"
    if which("apt-get") is None:
        raise JdbcUnavailable(f"JDBC probe needs {', '.join(missing)} and this host has no apt-get: "
                              "install a Java 11+ runtime and the PostgreSQL JDBC driver, "
                              "then set LAB_JDBC_JAR to the driver's jar")
    if not is_root():
        raise JdbcUnavailable(f"JDBC probe needs {', '.join(missing)}: run `sudo {manual}` once")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for another apt run (dpkg lock) instead of failing at once.
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends", *missing]
    done = run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        # Stale package lists are the usual cause; refresh once and retry.
        run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "update"], capture_output=True, text=True, env=env, timeout=300)
        done = run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        last = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise JdbcUnavailable(f"`{manual}` failed: {last[0]}")
    still = missing_packages(which=which, jar=jar)
    if still:
        raise JdbcUnavailable(f"after `{manual}`, still missing: {', '.join(still)}")
    return missing


def probe_command(url: str, user: str, password: str, count: int = 1, *,
                  jar: Path | None = None) -> list[str]:
    """The command line that runs the probe (also what a drill prints for people to type)."""
    return ["java", "-cp", str(jar or driver_jar()), str(PROBE_SOURCE), url, user, password, str(count)]


def parse_probe_output(text: str) -> list[Landing | str]:
    """Each line of the probe's output: a Landing, or the error message of a failed connection."""
    out: list[Landing | str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        item = json.loads(line)
        if "error" in item:
            out.append(str(item["error"]))
        else:
            out.append(Landing(address=item["address"], in_recovery=bool(item["in_recovery"])))
    return out


def probe(topo: Topology, url: str, count: int = 1, *, run: Runner = subprocess.run,
          state: lab_state.State | None = None, timeout: float = 120) -> list[Landing | str]:
    """Run the JDBC probe against ``url`` after the guard passed every host in it."""
    guard_hosts(topo, url_hosts(url), state)
    from labcore import credentials
    su = credentials.current(topo).superuser
    done = run(probe_command(url, su["username"], su["password"], count),
               capture_output=True, text=True, timeout=timeout)
    results = parse_probe_output(done.stdout)
    if not results:
        raise JdbcUnavailable(f"JDBC probe printed nothing (exit {done.returncode}): "
                              f"{(done.stderr or '').strip()[-300:]}")
    return results

