"""Real pull-failure messages and the scoring helpers the classifier tests use.

``pull_errors.json`` is the labelled corpus (every entry names where the text was found);
``held_out.json`` was collected after the patterns were written and is scored separately.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from regcred.failures import FailureClass, classify

HERE = Path(__file__).parent
CORPUS = HERE / "pull_errors.json"
HELD_OUT = HERE / "held_out.json"


# "class" is a keyword, so the functional form is the only way to spell this key.
Sample = TypedDict("Sample", {"message": str, "class": str, "source": str})


def load(path: Path = CORPUS) -> list[Sample]:
    """Read a corpus file (a JSON list of ``{"message", "class", "source"}``)."""
    with path.open(encoding="utf-8") as handle:
        rows: list[Sample] = json.load(handle)
    return rows


@dataclass(frozen=True)
class Scores:
    """Precision, recall and support of one class over a corpus."""

    precision: float
    recall: float
    support: int


def scores(
    corpus: Iterable[Sample], classifier: Callable[[str], FailureClass] = classify
) -> tuple[dict[str, Scores], float]:
    """Per-class scores and overall accuracy of ``classifier`` against the labels."""
    rows = list(corpus)
    predicted = [classifier(row["message"]).value for row in rows]
    labels = [row["class"] for row in rows]
    result: dict[str, Scores] = {}
    for cls in FailureClass:
        tp = sum(1 for p, y in zip(predicted, labels, strict=True) if p == y == cls.value)
        said = sum(1 for p in predicted if p == cls.value)
        support = sum(1 for y in labels if y == cls.value)
        # An empty denominator means nothing was wrong for that side: score it 1.0.
        result[cls.value] = Scores(
            precision=tp / said if said else 1.0,
            recall=tp / support if support else 1.0,
            support=support,
        )
    correct = sum(1 for p, y in zip(predicted, labels, strict=True) if p == y)
    return result, (correct / len(rows) if rows else 1.0)


def per_class_report(corpus: Iterable[Sample]) -> str:
    """A fixed-width table of precision/recall/support per class, then overall accuracy."""
    rows = list(corpus)
    by_class, accuracy = scores(rows)
    lines = [f"{'class':<20}{'precision':>10}{'recall':>8}{'support':>9}"]
    for name, s in by_class.items():
        lines.append(f"{name:<20}{s.precision:>10.3f}{s.recall:>8.3f}{s.support:>9}")
    lines.append(f"{'accuracy':<20}{accuracy:>10.3f}{'':>8}{len(rows):>9}")
    return "\n".join(lines)


_GITHUB = re.compile(r"github\.com/([^/\s]+/[^/\s]+)")
_URL_HOST = re.compile(r"https?://(?:www\.)?([^/\s]+)")
_FOUND_BY_ID = re.compile(r"\bid (\d+)")
_REPO_PATH = re.compile(r"^([\w.-]+/[\w.-]+)\s")


def source_key(source: str) -> str:
    """The repository (``owner/name``), web host or indexed file id a sample came from."""
    for pattern in (_GITHUB, _URL_HOST, _FOUND_BY_ID, _REPO_PATH):
        match = pattern.search(source)
        if match:
            return match.group(1).lower()
    return source.split(" ", 1)[0].lower()


def split_by_source(corpus: Sequence[Sample]) -> tuple[list[Sample], list[Sample]]:
    """Split deterministically by a hash of the source, so one repository never spans both halves."""
    halves: tuple[list[Sample], list[Sample]] = ([], [])
    for row in corpus:
        digest = hashlib.sha256(source_key(row["source"]).encode()).digest()
        halves[digest[0] % 2].append(row)
    return halves
