"""censorship-harness: measure keyword censorship on Chinese search platforms.

Library first; the ``harness`` command is a thin layer over these modules:

- :mod:`harness.models`: Pydantic models (keywords, probe sets, measurements)
- :mod:`harness.keywords`: keyword lists
- :mod:`harness.platforms`: declarative platform specs
- :mod:`harness.classify`: classification of one answer
- :mod:`harness.engine`: the run engine
- :mod:`harness.store`: the SQLite store
- :mod:`harness.diff`: the comparator
- :mod:`harness.sandbox`: the embedded sandbox platform
- :mod:`harness.isolation`: isolate the keyword combination that triggers censorship
"""

__version__ = "0.1.0"
