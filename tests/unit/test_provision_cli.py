"""`invoke provision`: bad names and a lab that is not up give one line and change nothing."""
from __future__ import annotations

import pytest
from invoke import Context, Exit

from lab.cli import provisioning


@pytest.fixture
def no_lab(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_DIR", str(tmp_path))      # an empty state dir: the lab is absent
    monkeypatch.delenv("LAB_TOPOLOGY", raising=False)
    contacted = []
    monkeypatch.setattr("labcore.remote.connect", lambda *a, **k: contacted.append(a))
    return contacted


def run(**kw):
    with pytest.raises(Exit) as e:
        provisioning.provision(Context(), **kw)
    return str(e.value.message), e.value.code


def test_unknown_step_is_named_with_a_suggestion(no_lab):
    msg, code = run(step=["etdc"])
    assert code == 2 and msg == "error: unknown step 'etdc' (did you mean etcd?)"
    assert not no_lab


def test_unknown_node_is_named_with_the_known_ones(no_lab):
    msg, code = run(node=["db7"])
    assert code == 2 and msg == "error: unknown node 'db7' (known: node1, node2, node3, node4)"
    assert not no_lab


def test_refuses_when_the_lab_is_not_up(no_lab):
    msg, _ = run(step=["etcd"])
    assert "the lab is not up" in msg and "invoke up" in msg
    msg, _ = run()
    assert "the lab is not up" in msg
    assert not no_lab


def test_comma_separated_and_repeated_options_are_the_same():
    assert provisioning._names(["etcd,patroni", "vip"]) == ["etcd", "patroni", "vip"]
    assert provisioning._names([]) is None
