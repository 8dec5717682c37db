"""Isolation: which keyword combination(s) make a text censored, in few queries.

- :mod:`harness.isolation.algorithm`: the algorithm, against any ``oracle(query) -> censored?``
  (pure: no I/O of its own);
- :mod:`harness.isolation.textmodel`: the prior-free text model (where components probably start and
  end in a text, from jieba; no keyword list) and :mod:`harness.isolation.fitted_weights`, its weights
  fitted on real sentences; :mod:`harness.isolation.fitted_tables`: the older ``table`` model's tables;
- :mod:`harness.isolation.oracle`: a real platform as the oracle (pacing, failures, controls);
- :mod:`harness.isolation.discovery`: sample testing of many texts (``harness discover``);
- :mod:`harness.isolation.after_runs`: isolate the phrases that became censored in a run;
- :mod:`harness.isolation.evidence`: every isolation query stored in the store as a measurement.

The public entry points are re-exported here: ``from harness.isolation import isolate, aisolate``.
"""

from .algorithm import InconsistentOracle, IsolationResult, Params, aisolate, component_probability, isolate

__all__ = ["InconsistentOracle", "IsolationResult", "Params", "aisolate", "component_probability", "isolate"]
