"""Exercises: drills that break the live lab the way the article describes (§5-§8) and verify what
Patroni does.

Layers, top down (docs/architecture.md): ``drills/`` (scenarios) -> ``steps`` (named shared
conditions and actions) -> ``kit/`` (shell, probe, SQL, REST, actions, facts, Patroni config);
``runner`` runs one drill in a ``context.Lab``, with ``recovery`` and ``health`` around it.

Write a drill: subclass ``model.Drill``, decorate with ``@model.drill``, and import its module in
``drills/__init__.py``.
"""
from lab.exercises.api.context import Lab  # noqa: F401
from lab.exercises.api.model import DRILLS, Drill, DrillError, ExpectationFailed, drill, lookup  # noqa: F401
from lab.exercises.run.runner import run_drill  # noqa: F401
from lab.exercises import drills  # noqa: F401  (registers the drills)
