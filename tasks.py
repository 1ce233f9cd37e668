"""patroni-lab: `invoke --list` shows the commands, `invoke --help <task>` their options."""
from invoke import Collection

from lab.cli import exercises, health, machines, provisioning, report

ns = Collection()
for module in (machines, provisioning, exercises, health, report):
    for task in module.TASKS:
        ns.add_task(task)
