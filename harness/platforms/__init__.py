"""Platforms: how to ask a search site and how to read its answer (stage 3 of the pipeline).

- :mod:`harness.platforms.spec`: the declarative spec model (request, signals, controls);
- :mod:`harness.platforms.registry`: built-in specs, ``platforms/`` folders, specs by path;
- :mod:`harness.platforms.adapters`: Python adapters (signing, multi-step sessions), found
  through the entry-point group ``harness.platforms``;
- :mod:`harness.platforms.classification`: what classifying one answer concluded;
- :mod:`harness.platforms.classify`: the pure classifier (answer + spec → classification);
- :mod:`harness.platforms.items`: item specs for watched items (built in: ``builtin_items/``), their
  registry and classifier.

Nothing here does I/O beyond reading spec files: sending requests is
:mod:`harness.measure`'s job.
"""

from .items import ItemRegistry, ItemSpec, load_item_spec
from .registry import BUILTIN_DIR, PlatformRegistry, load_spec
from .spec import Extractor, Matcher, PlatformSpec, RequestTemplate, Signals, SoftTest

__all__ = [
    "BUILTIN_DIR",
    "Extractor",
    "ItemRegistry",
    "ItemSpec",
    "Matcher",
    "PlatformRegistry",
    "PlatformSpec",
    "RequestTemplate",
    "Signals",
    "SoftTest",
    "load_item_spec",
    "load_spec",
]
