"""What classifying one answer concluded: a verdict, a failure code, and the evidence behind it.

A :class:`Classification` is produced by :mod:`harness.platforms.classify` (or by a
platform adapter's ``classify``) and carried by the engine into a stored measurement.
It lives apart from the classifier so adapters can name it without importing the
classifier (which imports the adapters).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..failures import FailureCode
from ..models import Verdict

__all__ = ["Classification", "failure"]


@dataclass
class Classification:
    verdict: Verdict
    failure: str | None = None
    signals: list[str] = field(default_factory=list)
    result_count: int | None = None
    result_items: int | None = None
    result_domains: list[str] = field(default_factory=list)
    result_urls: list[str] = field(default_factory=list)

    @property
    def has_results(self) -> bool:
        return self.verdict is Verdict.not_censored


def failure(code: FailureCode, *signals: str) -> Classification:
    return Classification(Verdict.failure, code.value, list(signals))
