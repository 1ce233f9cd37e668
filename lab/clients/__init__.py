"""What applications see: client-side probes of article §7 (multi-host URLs, JDBC, ARP).

Every address a probe contacts comes from the topology and passes
:func:`labcore.guard.check` first; nothing here re-types an IP.
"""
