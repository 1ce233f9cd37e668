"""The bench's parsing and judgement (lab/bench.py), on outputs and run folders made here."""
from __future__ import annotations

import json

from lab import bench
from lab.exercises.run.runner import phases

UP_OUTPUT = """\
  15.0s machines ready in 15.0 s (created in 14.5 s); ssh: ssh -F .lab/ssh_config node1
  18.9s step 5/11 patroni (article §4: Patroni members (node1 first, then the replicas))
  24.0s   cluster pgsql: pg1 leads
  27.8s   (8.9s)
  39.8s confirm (what the steps started and did not wait for: patroni)
  39.8s   (0.0s)
  39.8s provisioning: 116 change(s)
"""


def test_up_figures_read_machines_changes_and_each_step():
    f = bench.up_figures(39.9, UP_OUTPUT)
    assert f["machines_s"] == 15.0 and f["changes"] == 116
    assert f["steps_s"] == {"patroni": 8.9, "confirm": 0.0}


def test_a_drills_phases_add_up_and_a_drill_without_a_fault_has_no_window():
    assert phases(0.0, 1.0, 3.0, 10.0, 14.0) == {"gate": 1.0, "setup": 2.0, "fault_window": 7.0, "restore": 4.0}
    assert phases(0.0, 1.0, None, 10.0, 14.0)["fault_window"] is None


def test_the_overhead_share_is_taken_against_the_commands_wall_time(tmp_path):
    run = tmp_path / "20261201T100000Z-all"
    for name, ph in {"a": {"gate": 1, "setup": 2, "fault_window": 20, "restore": 5},
                     "rest-api": {"gate": 1, "setup": 6, "fault_window": None, "restore": 1}}.items():
        (run / name).mkdir(parents=True)
        (run / name / "result.json").write_text(json.dumps({"drill": name, "duration_s": 30, "phases_s": ph}))
    split = bench.drill_split(tmp_path, wall_s=40.0)
    assert split["observed_s"] == 26.0          # a's fault window + rest-api's own steps
    assert split["non_fault_window_share"] == 0.35
    assert split["gate_s"] == 2.0 and split["restore_s"] == 6.0
    assert split["setup_s"] == 2.0              # rest-api's steps are observed time, not setup


def test_a_slow_warm_up_is_reported_as_a_missed_target():
    res = {"lab_runs": {k: {"total_s": 40.0, "changes": 0} for k in ("warm_up", "rebuild", "cold_up", "second_provision")},
           "bare": {"warm_up_s": 40.0, "cold_up_s": 100.0}, "idle_memory": {"docker_stats_mb": 400}}
    res["lab_runs"]["warm_up"]["total_s"] = 60.0
    res["ratios"] = bench.ratios(res)
    got = bench.verdicts(res)
    assert got["warm_up <= 45 s"] is False and got["warm_up <= 1.3x bare warm"] is False
    assert got["rebuild <= 45 s"] is True and got["second provision: 0 changes"] is True
