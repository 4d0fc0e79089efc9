"""Diagnose, step 3: the report, as text lines or one JSON object."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from .checks import JOB, TASK, Check

__all__ = ["job_found", "render_json", "render_text"]


def _label(ok: bool | None) -> str:
    return "PASS" if ok is True else "FAIL" if ok is False else "SKIP"


def job_found(checks: Sequence[Check]) -> bool:
    """Whether the job or task itself could be read (the first check passed)."""
    return bool(checks) and checks[0].name in (JOB, TASK) and checks[0].ok is True


def render_text(checks: Sequence[Check]) -> str:
    """``PASS name: detail`` lines, `` — action`` appended where there is one."""
    lines = []
    for c in checks:
        line = f"{_label(c.ok)} {c.name}: {c.detail}"
        if c.action:
            line += f" — {c.action}"
        lines.append(line)
    return "\n".join(lines)


def render_json(job_id: str, checks: Sequence[Check], *, key: str = "job_id") -> dict[str, Any]:
    """The report as one JSON-ready object: every check, and whether none failed. ``key`` names the subject:
    ``job_id``, or ``task`` for an ECS task."""
    return {
        key: job_id,
        "checks": [asdict(c) | {"result": _label(c.ok).lower()} for c in checks],
        "ok": not any(c.ok is False for c in checks),
        "failed": [c.name for c in checks if c.ok is False],
    }
