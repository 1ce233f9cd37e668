"""The "did you mean" of every unknown name."""
from labcore.suggest import unknown


def test_the_closest_name_is_suggested():
    assert unknown("drill", "etcd-dwn", ["etcd-down", "switchover", "failover"]) == \
        "unknown drill 'etcd-dwn' (did you mean etcd-down?)"


def test_a_tie_lists_the_names_instead_of_guessing():
    assert unknown("node", "node9", ["node1", "node2"]) == "unknown node 'node9' (known: node1, node2)"


def test_many_names_and_nothing_close_points_at_the_listing():
    names = [f"drill-{i}" for i in range(30)]
    assert unknown("drill", "zzz", names, listing="invoke exercise --list") == \
        "unknown drill 'zzz' (`invoke exercise --list` lists them)"
