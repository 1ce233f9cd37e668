"""The blind-fault exam: one drill's fault injected without naming it, while the writer and the
watch keep running in a background process; the trainee names it (``exam.answer``), repairs it by
hand and proves it (``exam.done``), may ask for hints (``exam.hint``) or give up (``exam.give-up``).

Modules: ``pool`` (which faults, and why these), ``record`` (the exam's files in its run folder),
``background`` (the process that holds the fault, the writer and the watch), ``process`` (starting
and stopping it by pid), ``gate`` (the health gate plus what a fault can leave behind), ``score``
(the score line) and ``commands`` (what each ``invoke exam.start/exam.answer/...`` does).
"""
