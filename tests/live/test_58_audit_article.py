"""`invoke audit` on the session's lab in the article profile: it names the article's weak
settings and exits 0 (they are the lesson), with every probe harmless."""
from __future__ import annotations

import os

import pytest

from labcore import remote
from labcore import state as lab_state
from labcore.topology import load

pytestmark = pytest.mark.live


@pytest.fixture
def article_lab(request):
    """The session's lab (or, with LAB_REUSE=1, an already provisioned one as it is)."""
    if not (os.environ.get("LAB_REUSE") == "1" and lab_state.load().phase == "provisioned"):
        request.getfixturevalue("live_lab")
    if lab_state.load().phase != "provisioned":
        pytest.skip("the lab is not provisioned")
    return load()


def test_audit_lists_the_articles_choices_and_exits_0(article_lab, lab_cli):
    live_lab = article_lab

    def started() -> dict[str, str]:
        """Each member's postmaster start time: a restart by a probe would change it."""
        out = {}
        for n in live_lab.postgres_nodes:
            code, body = remote.http(live_lab, n.address, live_lab.ports.patroni, "/patroni")
            out[n.member] = (body or {}).get("postmaster_start_time") if code in (200, 503) else None
        return out

    before = started()
    assert all(before.values()), before
    run = lab_cli("audit", timeout=300)
    assert run.rc == 0, run.tail()
    out = run.output
    assert "profile: article" in out
    for finding in ("default-password", "md5-in-pg_hba", "pg_hba-open-to-any-address",
                    "rest-unauthenticated-unsafe-endpoint", "etcd-unauthenticated-write", "firewall-off"):
        assert finding in out, finding
    assert "POST http://" in out and "/restart answered 400 without credentials" in out
    assert "these are the article's choices" in out
    # harmless: no member's PostgreSQL was restarted by the probes
    assert started() == before
