"""What the drills' steps stand on: talking to the lab (shell, probe, SQL, REST, patronictl, haproxy
stats), facts read from the nodes, actions (faults and operations) and Patroni configuration edits.

Nothing here knows about drills, steps or the runner: the kit may import only the foundations
(``labcore.remote``, ``labcore.guard``, ``labcore.topology``, ``labcore.vips``) and other kit modules.
"""
