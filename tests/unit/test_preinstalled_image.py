"""The preinstalled node image: made from the steps' own package lists, never served stale."""
from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from lab.providers import image, preinstalled
from provision import engine, platforms, wheelhouse
from provision.context import Context, NodeFacts
from provision.steps import ORDER

from test_provision_support import topology

DEBIAN = platforms.DEBIAN12


def with_package(plat: platforms.Platform, group: str, name: str) -> platforms.Platform:
    packages = dict(plat.packages)
    packages[group] = packages[group] + (name,)
    return dataclasses.replace(plat, packages=packages)


def test_a_changed_package_list_is_a_new_tag():
    before = preinstalled.digest(DEBIAN, "recipe", "wheels")
    after = preinstalled.digest(with_package(DEBIAN, "postgres", "postgresql-contrib"), "recipe", "wheels")
    assert before != after
    assert preinstalled.tag_for(before) != preinstalled.tag_for(after)


def test_a_new_wheelhouse_or_node_recipe_is_a_new_tag_too():
    tags = {preinstalled.digest(DEBIAN, r, w) for r, w in (("a", "w1"), ("a", "w2"), ("b", "w1"))}
    assert len(tags) == 3


def test_the_image_installs_exactly_the_steps_lists_except_optional_groups():
    script = preinstalled.build_script(DEBIAN)
    install_line = next(line for line in script.splitlines() if "apt_install" in line)
    for group, names in DEBIAN.packages.items():
        for name in names:
            assert (f" {name} " in install_line) == (group not in platforms.OPTIONAL_GROUPS
                                                      or name in DEBIAN.all_packages()), (group, name)
    # Debian must be told "no main cluster" before PostgreSQL is installed, as in the step.
    assert script.index("createcluster.d") < script.index("apt_install")


class FakeDocker:
    """Records docker commands; ``present`` are the image tags that exist."""

    def __init__(self, present: set[str]):
        self.present = present
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        self.calls.append(args)
        if args[0] == "commit":
            self.present.add(args[-1])
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def docker(monkeypatch, tmp_path):
    wheels = tmp_path / "wheels.tar"
    wheels.write_bytes(b"wheels")
    monkeypatch.setattr(image, "ensure_node_image", lambda report, suite="bookworm": f"patroni-lab/node:{suite}")
    monkeypatch.setattr(image, "label", lambda ref, key: "recipe1")
    monkeypatch.setattr(wheelhouse, "ensure", lambda python, spec=None: wheels)
    fake = FakeDocker(set())
    monkeypatch.setattr(image, "image_exists", lambda ref: ref in fake.present)
    monkeypatch.setattr(preinstalled, "_docker", fake)
    return fake


def test_a_changed_list_builds_a_new_image_instead_of_serving_the_old_one(docker, tmp_path):
    first = preinstalled.ensure(DEBIAN, tmp_path / "apt", lambda m: None)
    assert ("commit" in {c[0] for c in docker.calls}) and first in docker.present
    docker.calls.clear()
    # Same lists: the image is reused, nothing is built.
    assert preinstalled.ensure(DEBIAN, tmp_path / "apt", lambda m: None) == first
    assert not [c for c in docker.calls if c[0] in ("create", "commit")]
    # One more package in a step's list: a new tag, built now; the old image is not returned.
    second = preinstalled.ensure(with_package(DEBIAN, "haproxy", "socat"), tmp_path / "apt", lambda m: None)
    assert second != first
    created = [c for c in docker.calls if c[0] == "create"]
    assert created and " socat" in created[0][-1]
    assert ("commit" in {c[0] for c in docker.calls}) and second in docker.present


def preinstalled_fact(r: engine.Resource, installed: tuple[str, ...]) -> str:
    """A fresh container of the preinstalled image: packages present, nothing configured yet."""
    if isinstance(r, engine.Packages):
        return "\n".join(n for n in r.names if n in installed)
    return ""


def plans_on_preinstalled_nodes(installed: tuple[str, ...]):
    topo = topology()
    for step in ORDER:
        for node in step.nodes(topo):
            ctx = Context(topo, node, DEBIAN, NodeFacts("eth1", True))
            resources = step.resources(ctx)
            yield step, node, resources, engine.plan(resources, [preinstalled_fact(r, installed) for r in resources])


def test_on_a_preinstalled_node_every_step_finds_its_packages_and_only_configures():
    seen = 0
    for step, node, resources, changes in plans_on_preinstalled_nodes(DEBIAN.all_packages()):
        assert not [c.what for c in changes if c.key.startswith("packages:")], (step.NAME, node.name)
        for r in resources:
            if isinstance(r, engine.Packages):
                seen += 1
                assert r.noop().endswith("installed")
    assert seen >= 20          # every step with packages, on each of its nodes


def test_a_package_missing_from_the_image_is_still_installed_by_its_step():
    installed = tuple(n for n in DEBIAN.all_packages() if n != "haproxy")
    missing = [(step.NAME, node.name, c.what) for step, node, _, changes in plans_on_preinstalled_nodes(installed)
               for c in changes if c.key.startswith("packages:")]
    assert missing == [("haproxy", "node1", "install haproxy"), ("haproxy", "node2", "install haproxy")]
