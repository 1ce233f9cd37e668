"""The drills, one module per article section group; importing registers them in table order."""
from lab.exercises.drills import replica, primary, cluster, watchdog, sync, etcd  # noqa: F401
from lab.exercises.ops import daily, access, cascade  # noqa: F401,E402  (article §6-§8)
