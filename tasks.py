"""patroni-lab: `invoke --list` shows the commands, `invoke --help <task>` their options."""
from invoke import Collection

from lab.cli import conventions, dashboard, exercises, health, machines, provisioning, report, security, snapshot, workshop

# Before Invoke reads INVOKE_LAB_* (it prints a traceback for a value it cannot cast).
conventions.check_environment()

ns = Collection()
for module in (machines, provisioning, exercises, health, report, security, workshop, dashboard):
    for task in module.TASKS:
        ns.add_task(conventions.wrap(task))

for module in (snapshot,):
    sub = Collection(module.NAME)
    for task in module.TASKS:
        sub.add_task(conventions.wrap(task))
    ns.add_collection(sub)
