"""The drills, one module per article section; importing registers them in table order.
A drill module imports steps, the kit and the model, never another drill module."""
from lab.exercises.drills import replica, primary, cluster, watchdog, sync, etcd, machine  # noqa: F401  (§5)
from lab.exercises.drills import daily, access, cascade  # noqa: F401  (§6-§8)
