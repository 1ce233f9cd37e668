"""Exercises: drills that break the live lab the way article §5 describes and verify what Patroni does.

Write a drill: subclass ``engine.Drill``, decorate with ``@engine.drill``, and
import its module in ``drills/__init__.py``.
"""
from lab.exercises.engine import DRILLS, Drill, DrillError, Lab, drill, lookup, run_drill  # noqa: F401
from lab.exercises import drills  # noqa: F401  (registers the drills)
