"""Tier 3: a blind-fault exam on the session's lab, taken the way a trainee takes it. The test
investigates with the usual tools over ssh, answers wrongly once and rightly once, reads the fault
the exam chose from the run record only after it has answered, repairs with the drill's own undo
command typed on the node, and ends with `--done`.

Cost: about 1-2 min on the 2-core build machine (gate, one replica fault, the repair, the gate
again); the lab is reused, not rebuilt.
"""
from __future__ import annotations

import json
import re

import pytest

from lab.exam import process
from lab.exam.record import exam_folders
from lab.exercises import DRILLS
from lab.exercises.kit.shell import SshShell

pytestmark = pytest.mark.live
POOL = ("replica-patroni-stop", "replica-etcd-cut")
SEED = "13"


def what_is_broken(topo, shell: SshShell) -> dict[str, str]:
    """What an on-call engineer would look at first: is Patroni running, can the node reach etcd."""
    seen = {}
    for n in topo.postgres_nodes:
        if shell.run(n.name, "systemctl is-active patroni").stdout.strip() != "active":
            seen[n.name] = "replica-patroni-stop"
        rules = shell.run(n.name, f"sudo iptables -S OUTPUT 2>/dev/null | grep -c -- '--dport "
                                  f"{topo.ports.etcd_client}.*-j DROP' || true").stdout.strip()
        if rules not in ("", "0"):
            seen[n.name] = "replica-etcd-cut"
    return seen


def undo_lines(drill: str, topo) -> list[str]:
    """The drill's own undo commands as its page shows them, with the lab's etcd address filled in."""
    out = []
    for line in DRILLS[drill].commands:
        where, _, command = line.partition(": ")
        if "undo" in where:
            for n in topo.etcd_nodes:
                out.append(command.replace("<etcd address>", n.address).split("  #")[0].strip())
            if "<etcd address>" not in command:
                break
    return list(dict.fromkeys(out))


def test_a_seeded_exam_is_answered_repaired_by_hand_and_scored(provisioned_lab, lab_cli):
    topo = provisioned_lab
    shell = SshShell(topo)
    started = lab_cli("exam.start", "--from", ",".join(POOL), "--seed", SEED, timeout=400)
    assert started.rc == 0, started.output
    assert not any(d in started.output for d in POOL), "the exam named its fault"
    exam = exam_folders()[-1]

    again = lab_cli("exam.start", timeout=60)
    assert again.rc == 2 and "already going on" in again.output and len(again.output.strip().splitlines()) == 1
    assert exam_folders()[-1] == exam

    seen = what_is_broken(topo, shell)
    assert len(seen) == 1, f"the investigation should find one broken node: {seen}"
    (node, guess), = seen.items()
    wrong = next(d for d in POOL if d != guess)
    said = lab_cli("exam.answer", wrong, timeout=60)
    assert said.rc == 0 and said.output.startswith("wrong"), said.output
    said = lab_cli("exam.answer", guess, timeout=60)
    assert said.rc == 0 and said.output.startswith("right"), said.output
    hint = lab_cli("exam.hint", timeout=60)
    assert hint.rc == 0 and hint.output.startswith("hint 1 of "), hint.output

    fault = json.loads((exam / "fault.json").read_text())          # read only now, after answering
    assert (fault["drill"], fault["node"], fault["state"]) == (guess, node, "running")
    pid = json.loads((exam / "exam.json").read_text())["pid"]
    assert process.alive(pid), "the writer and the watch run in the background between the commands"

    for command in undo_lines(guess, topo):
        out = shell.run(node, command, timeout=60)
        assert out.ok, f"{command}: {out.stderr}"

    done = lab_cli("exam.done", timeout=300)
    assert done.rc == 0, done.output
    line = done.output.strip().splitlines()[-1]
    assert re.match(rf"exam score: fault {guess} on {node} \| answer right \(2 given\), named after [\d.]+ s \| "
                    r"repaired after [\d.]+ s \| hints 1 \| writes lost 0 \| RTO vip ", line), line
    assert not process.alive(pid), "the background process outlived the exam"

    run = json.loads((exam / "run.json").read_text())
    sc = run["score"]
    assert run["finished"] and run["drills"] == ["exam"] and run["fault"] == guess
    assert (sc["fault"], sc["node"], sc["answer"], sc["answers"], sc["hints"], sc["gave_up"]) == \
        (guess, node, "right", 2, 1, False)
    assert 0 < sc["answered_s"] <= sc["repaired_s"]
    assert sc["writes_counted"] and sc["writes_lost"] == 0 and sc["writes_acknowledged"] > 0
    assert set(sc["rto_s"]) == {"vip", "haproxy", "vip-per-txn"}
    result = json.loads((exam / "exam" / "result.json").read_text())
    assert result["score"] == sc and result["watch"]["samples"] > 0
    assert [a["right"] for a in result["exam"]["answers"]] == [False, True]
    kinds = {json.loads(ln)["type"] for ln in (exam / "exam" / "events.jsonl").read_text().splitlines()}
    assert {"sample", "write", "mark"} <= kinds
    listed = lab_cli("exercise.runs", timeout=60)
    assert exam.name in listed.output and "answer right, repaired in" in listed.output
