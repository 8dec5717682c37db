"""The categories codebook (``keywords/categories.yaml``): the codes an entry's ``category`` may take."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from ..errors import KeywordListError
from ..models import StrictModel
from ..yamlio import load_model

CODEBOOK_FILENAME = "categories.yaml"


class Category(StrictModel):
    code: str = Field(pattern=r"^[a-z0-9_]+$", description="snake_case code used in lists")
    name: str
    description: str = ""


class CategoryCodebook(StrictModel):
    categories: list[Category] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> "CategoryCodebook":
        seen: set[str] = set()
        for c in self.categories:
            if c.code in seen:
                raise ValueError(f"category code {c.code!r} is defined twice")
            seen.add(c.code)
        return self

    @property
    def codes(self) -> set[str]:
        return {c.code for c in self.categories}

    def get(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)


def project_codebook_path() -> Path:
    """The codebook that came with the harness: inside an installed package, else the source tree's."""
    package = Path(__file__).resolve().parents[1]
    bundled = package / "bundled" / "keywords" / CODEBOOK_FILENAME
    return bundled if bundled.is_file() else package.parent / "keywords" / CODEBOOK_FILENAME


def load_codebook(path: str | Path) -> CategoryCodebook:
    codebook, _ = load_model(path, CategoryCodebook, KeywordListError)
    return codebook


def find_codebook(list_files: list[Path]) -> Path | None:
    """The codebook that governs these lists: ``categories.yaml`` beside the first list that
    has one, else the project's own."""
    for f in list_files:
        candidate = f.parent / CODEBOOK_FILENAME
        if candidate.is_file():
            return candidate
    fallback = project_codebook_path()
    return fallback if fallback.is_file() else None
