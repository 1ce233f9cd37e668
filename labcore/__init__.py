"""The foundation both ``lab`` and ``provision`` stand on; it imports neither.

- ``topology`` (with ``strict_yaml``, ``suggest``): the lab described in topology.yml, checked.
- ``state``: the lab's directory ($LAB_DIR, default .lab) and its phase.
- ``guard``: the safety check every connection passes (lab addresses, via the lab's own bridge).
- ``remote``: the one Fabric connection factory, HTTP and PostgreSQL connections, all guarded.
- ``credentials``: the passwords of the active security profile.
- ``exitcodes``: one exit-code convention (refused = 2).
- ``progress``: how long-running commands report.
- ``poll``: every bounded wait and the one timeout multiplier.
"""
