"""Step 4, article §4: PostgreSQL packages and the data directory Patroni will fill."""
from __future__ import annotations

import posixpath

from labcore.topology import Node, Topology
from provision.context import Context
from provision.engine import Command, Directory, File, Resource

NAME = "postgres"
SECTION = "4"
TITLE = "PostgreSQL packages and data directory"

# The article's initdb options ask for this collation (article §4).
LOCALE = "zh_CN.UTF-8"
# Compiling the locale costs seconds of CPU per node: the preinstalled image runs it once.
LOCALEDEF = "localedef -i zh_CN -f UTF-8 zh_CN.UTF-8"
# Written before the packages (here and in the docker provider's preinstalled image).
CREATECLUSTER = "# Managed by patroni-lab: Patroni creates the cluster.\ncreate_main_cluster = false\n"


def nodes(topo: Topology) -> list[Node]:
    return topo.postgres_nodes + ([topo.standby_node] if topo.standby_node else [])


def resources(ctx: Context) -> list[Resource]:
    p = ctx.platform
    out: list[Resource] = []
    if p.createcluster_conf:
        # Debian would create and start a "main" cluster on install; Patroni owns initdb here.
        out.append(File(p.createcluster_conf, CREATECLUSTER))
    out += ctx.packages("postgres")
    out.append(Command(f"locale {LOCALE} available", (LOCALEDEF,), "locale -a | grep -qix 'zh_CN.utf8'"))
    data = ctx.topo.cluster.data_dir
    out.append(Directory(posixpath.dirname(data), "postgres", "postgres", "755"))
    out.append(Directory(data, "postgres", "postgres", "700"))
    return out
