"""``patronictl`` command lines, as a trainee types them on a member (article §6).

Patroni 4 asks "Are you sure?" for anything that changes the cluster; a
script passes ``--force``. The article keeps one ``/etc/patroni.yml``; the lab
gives Patroni a directory of fragments (one per provisioning step), which
``patronictl -c`` accepts the same way.
"""
from __future__ import annotations

import json
import shlex

from lab.exercises.kit.patroni_config import PATRONI_CONFIG


def patronictl(*args: str) -> str:
    """``patronictl -c <config> ARGS`` run as postgres, who owns the configuration."""
    return "sudo -u postgres patronictl -c " + PATRONI_CONFIG + " " + " ".join(shlex.quote(a) for a in args)


def edit_config_pg(scope: str, **params: object) -> str:
    return patronictl("edit-config", scope, "--force", "--quiet",
                      *[x for k, v in params.items() for x in ("-p", f"{k}={v}")])


def edit_config_set(scope: str, **settings: object) -> str:
    """``edit-config -s key=value``; a value of None removes the key (``null``)."""
    pairs = [f"{k.replace('__', '.')}={'null' if v is None else v}" for k, v in settings.items()]
    return patronictl("edit-config", scope, "--force", "--quiet", *[x for p in pairs for x in ("-s", p)])


def restart(scope: str, *members: str, pending: bool = False) -> str:
    return patronictl("restart", scope, *members, "--force", *(["--pending"] if pending else []))


def switchover(scope: str, leader: str, candidate: str, leader_flag: str = "--leader") -> str:
    """``leader_flag``: what this Patroni calls the current leader (``--master`` before 3.0)."""
    return patronictl("switchover", scope, leader_flag, leader, "--candidate", candidate, "--force")


def failover(scope: str, candidate: str) -> str:
    return patronictl("failover", scope, "--candidate", candidate, "--force")


def pause(scope: str) -> str:
    return patronictl("pause", scope, "--wait")


def resume(scope: str) -> str:
    return patronictl("resume", scope, "--wait")


def reinit(scope: str, member: str) -> str:
    return patronictl("reinit", scope, member, "--force", "--wait")


def reload(scope: str, *members: str) -> str:
    return patronictl("reload", scope, *members, "--force")


def history(scope: str) -> str:
    return patronictl("history", scope, "-f", "json")


def parse_history(stdout: str) -> list[dict]:
    """``patronictl history -f json`` -> list of {TL, LSN, Reason, Timestamp, New Leader}."""
    text = stdout.strip()
    start = text.find("[")
    if start < 0:
        raise ValueError(f"patronictl history printed no JSON list: {text[:200]!r}")
    return json.loads(text[start:])


def remove(scope: str) -> str:
    """``patronictl remove`` asks twice (the name, then a sentence); a drill answers both."""
    answers = shlex.quote(f"{scope}\\nYes I am aware\\n")
    return f"printf {answers} | " + patronictl("remove", scope)
