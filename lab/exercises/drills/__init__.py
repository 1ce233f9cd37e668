"""The drills, one module per article section group; importing registers them in table order."""
from lab.exercises.drills import replica, primary, cluster, watchdog, sync, etcd  # noqa: F401
