"""patroni-lab: topology, state, providers and exercises of the lab."""
