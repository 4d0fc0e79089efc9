"""Real pull-failure messages and the scoring helpers the classifier tests use.

Two files, two roles (see README.md in this directory for the collection protocol):

* ``pull_errors.json`` (:data:`TRAINING`): the messages the rules were written and tuned against. The
  tests require every one of them to get its label.
* ``held_out.json`` (:data:`HELD_OUT`): messages collected and scored before any rule was tuned on
  them, and never tuned on afterwards. The tests only require the targets (accuracy, per-class recall)
  there, not perfection: a rule change that fixes a held-out message must move it (and only after it
  was scored) into training, and the held-out split must keep at least :data:`HELD_OUT_MIN` messages.

``reference_examples.json`` is a handful of design examples per class that must stay in training with
the same label. Every entry is ``{"message", "class", "source", "registry"}`` plus an optional
``"runtime"``; a ``source`` containing ``derived:`` marks a variant made from another entry (Batch's
255-character cut, curly quotes) and is labelled from that original.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

from regcred.failures import FailureClass, classify

HERE = Path(__file__).parent
TRAINING = HERE / "pull_errors.json"
HELD_OUT = HERE / "held_out.json"
REFERENCE = HERE / "reference_examples.json"
# Kept for older imports: the training file.
CORPUS = TRAINING
HELD_OUT_MIN = 120
# Variants included: the held-out split as a whole, and every class must have support in it.
HELD_OUT_TOTAL_MIN = 300

# The registries and runtimes the corpus must cover (``generic``: a self-hosted or proxy registry;
# ``n/a``: the ECS agent's secret stage and other stages that never reach a registry).
REGISTRIES = frozenset(
    {
        "dockerhub",
        "ghcr",
        "gitlab",
        "quay",
        "harbor",
        "artifactory",
        "acr",
        "ecr",
        "gar",
        "gcr",
        "mcr",
        "nexus",
        "generic",
        "n/a",
    }
)
REQUIRED_RUNTIMES = frozenset({"docker", "containerd", "ecs-agent", "windows", "batch"})
DERIVED_MARK = "derived:"


# "class" is a keyword, so the functional form is the only way to spell this key.
Sample = TypedDict(
    "Sample",
    {"message": str, "class": str, "source": str, "registry": str, "runtime": NotRequired[str]},
)


def load(path: Path = TRAINING) -> list[Sample]:
    """Read a corpus file (a JSON list of samples)."""
    with path.open(encoding="utf-8") as handle:
        rows: list[Sample] = json.load(handle)
    return rows


def is_derived(sample: Sample) -> bool:
    """Whether the sample was made from another one (a Batch cut or a curly-quote variant)."""
    source = sample["source"]
    return DERIVED_MARK in source or "(truncated" in source or "curly-quote variant" in source


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
