"""Benchmark: the pull-failure classifier against the labelled corpus of real messages.

Reads the two corpus files as data (tests/corpus/pull_errors.json, the training split the rules were
tuned on, and tests/corpus/held_out.json, messages scored before any rule was tuned on them) and prints
one JSON line: per split, the number of messages, the accuracy, and precision/recall/support per
failure class. The held-out figures are the ones that say how the rules generalise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "regcred"))

from regcred.failures import FailureClass, classify

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
SPLITS = {"train": CORPUS / "pull_errors.json", "held_out": CORPUS / "held_out.json"}


def load(path: Path) -> list[tuple[str, str]]:
    """(message, label) pairs of one corpus file."""
    with path.open(encoding="utf-8") as handle:
        rows = json.load(handle)
    return [(row["message"], row["class"]) for row in rows]


def score(rows: list[tuple[str, str]]) -> dict[str, Any]:
    predicted = [classify(message).value for message, _ in rows]
    labels = [label for _, label in rows]
    pairs = list(zip(predicted, labels, strict=True))
    per_class: dict[str, dict[str, float | int]] = {}
    for cls in FailureClass:
        tp = sum(1 for p, y in pairs if p == y == cls.value)
        said = sum(1 for p in predicted if p == cls.value)
        support = sum(1 for y in labels if y == cls.value)
        # An empty denominator means nothing went wrong on that side: 1.0.
        per_class[cls.value] = {
            "precision": round(tp / said, 4) if said else 1.0,
            "recall": round(tp / support, 4) if support else 1.0,
            "support": support,
        }
    correct = sum(1 for p, y in pairs if p == y)
    return {
        "messages": len(rows),
        "accuracy": round(correct / len(rows), 4) if rows else 1.0,
        "per_class": per_class,
    }


def main() -> None:
    result: dict[str, Any] = {"bench": "classify"}
    for name, path in SPLITS.items():
        result[name] = score(load(path))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
