"""The blind-fault exam: one drill's fault injected without naming it, while the writer and the
watch keep running in a background process; the trainee names it (``--answer``), repairs it by
hand and proves it (``--done``), may ask for hints (``--hint``) or give up (``--give-up``).

Modules: ``pool`` (which faults, and why these), ``record`` (the exam's files in its run folder),
``background`` (the process that holds the fault, the writer and the watch), ``process`` (starting
and stopping it by pid), ``gate`` (the health gate plus what a fault can leave behind), ``score``
(the score line) and ``commands`` (what each ``invoke exercise --exam/--answer/...`` does).
"""
