"""patroni-lab: `invoke --list` shows the commands, `invoke --help <task>` their options.

Machine and lab commands are top-level tasks (`invoke up`, `invoke status`, ...); the drills, the
exam and the workshop are collections of small tasks (`invoke exercise.list`, `invoke exam.start`,
`invoke workshop.up`), and `invoke exercise <drill>` is the exercise collection's default task."""
from invoke import Collection

from lab.cli import conventions, dashboard, exam, exercises, health, machines, provisioning, report, security, snapshot, workshop

# Before Invoke reads INVOKE_LAB_* (it prints a traceback for a value it cannot cast).
conventions.check_environment()

ns = Collection()
for module in (machines, provisioning, health, report, security, dashboard):
    for task in module.TASKS:
        ns.add_task(conventions.wrap(task))
ns.add_collection(conventions.collection("exercise", exercises.TASKS, default=exercises.DEFAULT))
ns.add_collection(conventions.collection("exam", exam.TASKS))
ns.add_collection(conventions.collection("workshop", workshop.TASKS, default=workshop.DEFAULT))
ns.add_collection(conventions.collection("snapshot", snapshot.TASKS))
