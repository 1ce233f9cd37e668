"""Patroni's wheelhouse, built once on the control host.

Nodes here cannot reach PyPI over HTTPS, and a workshop room's Wi-Fi should
not have to: the control host builds the wheels once into a cache, and every
node installs from that copy with ``pip install --no-index``.

The control host's Python may differ from the nodes' (Ubuntu 24.04 ships 3.12,
Debian 12 nodes run 3.11). Pure-Python wheels serve any version; each compiled
wheel (psycopg2-binary, PyYAML, psutil...) is swapped for the build PyPI
publishes for the nodes' Python and the host's architecture.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import zipfile

from labcore import versions
from provision.platforms import DEBIAN12

DEFAULT_SPEC = DEBIAN12.patroni_spec
DRIVER = "psycopg2-binary"


def constraints(spec: str) -> tuple[str, ...]:
    """Limits on Patroni's dependencies that its own release did not set, because the dependency broke
    later: ydiff 1.3 dropped the PatchStream that patronictl imports before 3.3.0, and ydiff 1.5 changed
    what 3.3 uses (3.3.8 and 4.x pin it away themselves). Without them a 2.x installed today gets a
    patronictl that does not start ("No module named 'cdiff'")."""
    release = versions.parse(spec.split("==", 1)[1])
    return ("ydiff<1.3",) if release < (3, 3, 0) else ("ydiff<1.5",)
REMOTE_TARBALL = "/tmp/patroni-lab-wheelhouse.tar"
# The manylinux tags a Debian 12 node (glibc 2.36) can load, newest first.
MANYLINUX = ("manylinux_2_34", "manylinux_2_28", "manylinux_2_17", "manylinux2014")


def cache_dir() -> Path:
    base = os.environ.get("LAB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "patroni-lab"
    return Path(base)


def tarball(node_python: str = "3.11", spec: str = DEFAULT_SPEC) -> Path:
    """Where the wheelhouse tarball of ``spec`` (``patroni[etcd3]==4.1.5``) for nodes running ``node_python``
    lives (it may not be built yet)."""
    extra, version = spec.removeprefix("patroni[").split("]==")
    dcs = "" if extra == "etcd3" else f"-{extra}"
    return cache_dir() / f"wheelhouse-patroni-{version}{dcs}-py{node_python.replace('.', '')}.tar"


def _pip(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"cannot build Patroni's wheelhouse with pip: {tail}")


def is_pure(wheel: Path) -> bool:
    """A wheel whose tags (name-version-python-abi-platform) say it runs on any CPython 3."""
    *_, abi, plat = wheel.stem.split("-")
    return abi == "none" and plat == "any"


def compiled_for(wheel: Path, node_python: str) -> bool:
    """A compiled wheel already built for the nodes' Python: cp311 for 3.11, or a stable-ABI wheel
    (abi3) whose tag is not newer than it (cp310-abi3 runs on 3.10 and later, not on Debian 11's 3.9)."""
    *_, py, abi, _plat = wheel.stem.split("-")
    node = f"cp{node_python.replace('.', '')}"
    if py == node:
        return True
    minimum = [int(t[3:]) for t in py.split(".") if t.startswith("cp3") and t[3:].isdigit()]
    return abi == "abi3" and bool(minimum) and min(minimum) <= int(node[3:])


def runs_on(wheel: Path, node_python: str) -> bool:
    """The wheel's Requires-Python admits ``node_python`` (no such line: any)."""
    from packaging.specifiers import SpecifierSet

    with zipfile.ZipFile(wheel) as z:
        meta = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA")), None)
        text = z.read(meta).decode("utf-8", "replace") if meta else ""
    for line in text.splitlines():
        if line.startswith("Requires-Python:"):
            return SpecifierSet(line.split(":", 1)[1].strip()).contains(node_python)
        if not line:
            break
    return True


def retarget(wheels: Path, node_python: str, machine: str | None = None) -> list[str]:
    """Replace each wheel that cannot run on ``node_python`` with PyPI's build for it: a compiled wheel
    built for another Python by the same release's build for this one, a release that no longer
    supports this Python (the host resolved for its own) by the newest release that does, with the
    dependencies that one has. Returns their names."""
    arch = machine or platform.machine()
    platforms = [arg for tag in MANYLINUX for arg in ("--platform", f"{tag}_{arch}")]
    swapped = []
    for whl in sorted(wheels.glob("*.whl")):
        supported = runs_on(whl, node_python)
        if supported and (is_pure(whl) or compiled_for(whl, node_python)):
            continue
        name, version = whl.name.split("-")[:2]
        # another release may need what the host's did not (python-dateutil 2.9 needs six): with its
        # dependencies, each for the nodes' Python
        deps = ("--no-deps",) if supported else ()
        _pip("download", "-q", *deps, "--only-binary=:all:", "--implementation", "cp",
             "--python-version", node_python, *platforms, "-d", str(wheels),
             f"{name}=={version}" if supported else name)
        whl.unlink()
        swapped.append(name)
    return swapped


def ensure(node_python: str, spec: str = DEFAULT_SPEC) -> Path:
    """Build the wheelhouse tarball of ``spec`` for nodes running ``node_python`` unless it exists; return its path."""
    out = tarball(node_python, spec)
    if out.exists():
        return out
    wheels = out.with_suffix("")
    shutil.rmtree(wheels, ignore_errors=True)         # a build cut short leaves no stray wheel behind
    wheels.mkdir(parents=True)
    limits = wheels / "constraints.txt"
    limits.write_text("\n".join(constraints(spec)) + "\n")
    _pip("wheel", "-q", "-w", str(wheels), "-c", str(limits), spec, DRIVER)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != node_python:
        retarget(wheels, node_python)
    tmp = out.with_suffix(".partial")
    with tarfile.open(tmp, "w") as tar:
        for whl in sorted(wheels.glob("*.whl")):
            tar.add(whl, arcname=whl.name)
    tmp.replace(out)
    return out
