"""Workshop mode: a room of independent labs (seats) on one trainer host, and blind-fault exams.

- :mod:`lab.workshop.seats`: seat k's topology, derived from the lab's topology
  (a function of the base file, a base subnet and k; validated by the topology loader).
- :mod:`lab.workshop.room`: bring every seat up (bounded parallelism), their status, down.
- :mod:`lab.workshop.history`: the last drill or exam of a seat, from its run history.
"""
