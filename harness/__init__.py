"""censorship-harness: measure keyword censorship on Chinese search platforms.

Library first; the ``harness`` command (:mod:`harness.cli`) is a thin layer over it.
The package is laid out by pipeline stage (``docs/architecture.md``); a lower stage never
imports a higher one (``tests/test_architecture.py`` checks it):

- foundation: :mod:`harness.models` (Pydantic models of everything that crosses a file
  boundary), :mod:`harness.errors` (the exception tree), :mod:`harness.failures` (failure
  codes), :mod:`harness.yamlio` (YAML with file:line errors);
- :mod:`harness.keywords`: keyword lists;
- :mod:`harness.platforms`: platform specs and the pure classifier;
- :mod:`harness.store`: the measurement store and its upkeep;
- :mod:`harness.measure`: probe plans, requests, pacing and the run engine;
- :mod:`harness.analysis`: comparator, timelines, reports, exports, re-classification;
- :mod:`harness.isolation`: isolate the keyword combination that triggers censorship;
- :mod:`harness.operations`: whole runs, schedules, configuration and logs;
- :mod:`harness.sandbox`: the embedded sandbox platform (tests and demo).
"""

__version__ = "0.1.0"
