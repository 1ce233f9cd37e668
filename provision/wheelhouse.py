"""Patroni's wheelhouse, built once on the control host.

Nodes here cannot reach PyPI over HTTPS, and a workshop room's Wi-Fi should
not have to: the control host runs ``pip wheel`` once into a cache, and every
node installs from that copy with ``pip install --no-index``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from provision.platforms import PATRONI_VERSION

REQUIREMENTS = (f"patroni[etcd3]=={PATRONI_VERSION}", "psycopg2-binary")
REMOTE_TARBALL = "/tmp/patroni-lab-wheelhouse.tar"


def cache_dir() -> Path:
    base = os.environ.get("LAB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "patroni-lab"
    return Path(base)


def tarball() -> Path:
    """Where the wheelhouse tarball lives (it may not be built yet)."""
    return cache_dir() / f"wheelhouse-patroni-{PATRONI_VERSION}-py{sys.version_info.major}{sys.version_info.minor}.tar"


def ensure(node_python: str) -> Path:
    """Build the wheelhouse tarball unless it exists; return its path.

    ``pip wheel`` builds for the Python running it, and some wheels are compiled
    (psycopg2-binary, PyYAML): the control host's Python must be the nodes' version.
    """
    out = tarball()
    if out.exists():
        return out
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != node_python:
        raise RuntimeError(f"the wheelhouse must be built by Python {node_python} (the nodes' Python), "
                           f"but invoke runs on Python {here}: use a Python {node_python} venv for the lab")
    wheels = out.with_suffix("")
    wheels.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), *REQUIREMENTS],
                       capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"cannot build Patroni's wheelhouse with pip: {tail}")
    tmp = out.with_suffix(".partial")
    with tarfile.open(tmp, "w") as tar:
        for whl in sorted(wheels.glob("*.whl")):
            tar.add(whl, arcname=whl.name)
    tmp.replace(out)
    return out
