"""The provisioning steps, in the article's order (sections 2-8)."""
from __future__ import annotations

from types import ModuleType

from provision.steps import (cascading, etcd, firewall, haproxy, keepalived, patroni, postgres,
                             standby, timesync, vip, watchdog)

ORDER: tuple[ModuleType, ...] = (timesync, firewall, etcd, postgres, patroni, watchdog, vip,
                                 keepalived, haproxy, cascading, standby)
STEPS: dict[str, ModuleType] = {m.NAME: m for m in ORDER}
