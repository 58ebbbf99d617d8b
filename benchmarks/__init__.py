"""jaxgd's benchmark suite: ratio tables against the loops users would write.

Run it with ``make bench`` or ``python -m benchmarks`` from a source checkout
(``--quick`` for a smoke run, ``--only A,C`` to select, ``--help`` for the
rest). Each benchmark lives in its own module and returns a :class:`Report`
(see ``benchmarks/_util.py``); ``benchmarks/run.py`` prints them as markdown
tables. Targets and measured tables: ``benchmarks/RESULTS.md``.
"""
