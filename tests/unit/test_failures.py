"""Pull-failure classification against real Batch/ECS/Docker/containerd/registry messages."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import pytest

from regcred.failures import (
    PULL_CLASSES,
    FailureClass,
    add_classify_parser,
    classify,
    cmd_classify,
    normalise,
)
from tests.corpus import HELD_OUT, Sample, load, per_class_report, scores, split_by_source

CORPUS = load()
HELD = load(HELD_OUT)
# The design's own few examples per class, kept with the corpus.
REFERENCE = Path(__file__).resolve().parents[1] / "corpus" / "reference_examples.json"
BATCH_LIMIT = 255
# The class-deciding words must survive Batch's cut for the cut message to be judged on them.
DECISIVE_WITHIN = 200


def _curly(text: str) -> str:
    # What a console, a wiki or the ECS agent itself does to quotes: pairs of U+201C/U+201D, and
    # U+2019 for an apostrophe (U+2018 when the quote opens a word).
    out: list[str] = []
    doubles = 0
    for i, ch in enumerate(text):
        if ch == '"':
            out.append("\u201c" if doubles % 2 == 0 else "\u201d")
            doubles += 1
        elif ch == "'":
            out.append("\u2019" if i and text[i - 1].isalnum() else "\u2018")
        else:
            out.append(ch)
    return "".join(out)


def _corpus_message(fragment: str) -> Sample:
    # The first original (not cut, not curly) corpus entry with the fragment in its text or source.
    for row in CORPUS:
        original = "truncated" not in row["source"] and "curly" not in row["source"]
        if original and (fragment in row["message"] or fragment in row["source"]):
            return row
    raise AssertionError(f"no corpus message for {fragment!r}")


# -- the corpus -----------------------------------------------------------------------------------


def test_corpus_is_large_sourced_and_covers_every_class() -> None:
    assert len(CORPUS) >= 100
    assert all(row["source"].strip() for row in CORPUS)
    assert len({row["message"] for row in CORPUS}) == len(CORPUS), "duplicate messages"
    by_class, _ = scores(CORPUS)
    thin = {name: s.support for name, s in by_class.items() if s.support < 6}
    assert not thin, f"classes with fewer than 6 messages: {thin}"


def test_corpus_keeps_the_shared_reference_examples() -> None:
    with REFERENCE.open(encoding="utf-8") as handle:
        reference = json.load(handle)
    messages = {row["message"]: row["class"] for row in CORPUS}
    for row in reference:
        assert messages.get(row["message"]) == row["class"]


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: f"{s['class']}:{s['message'][:50]}")
def test_every_corpus_message_gets_its_label(sample: Sample) -> None:
    assert classify(sample["message"]) == sample["class"], sample["source"]


def test_per_class_report_and_accuracy() -> None:
    print("\ncorpus (" + str(len(CORPUS)) + " messages)\n" + per_class_report(CORPUS))
    _, accuracy = scores(CORPUS)
    assert accuracy == 1.0


def test_each_half_split_by_source_classifies_alone() -> None:
    # Halves by source repository/host: a rule that only fits one project's wording shows up as a
    # half that scores worse than the other.
    first, second = split_by_source(CORPUS)
    assert first and second
    for name, half in (("half A", first), ("half B", second)):
        print(f"\n{name} ({len(half)} messages)\n" + per_class_report(half))
        _, accuracy = scores(half)
        assert accuracy == 1.0


def test_held_out_recall_per_class() -> None:
    # held_out.json was collected after the patterns were frozen. Scored then, it got 48 of 53:
    # ECR-token and CannotInspectContainerError stages, podman's and the runtime's platform wordings
    # and a bare GetSecretValue error were missed, and four rules were added for them. It is
    # therefore no longer unseen; new real messages belong here first, before any tuning.
    assert len(HELD) >= 25
    corpus_messages = {row["message"] for row in CORPUS}
    assert not [row for row in HELD if row["message"] in corpus_messages], "held-out overlaps corpus"
    print(f"\nheld out ({len(HELD)} messages)\n" + per_class_report(HELD))
    by_class, _ = scores(HELD)
    low = {name: round(s.recall, 3) for name, s in by_class.items() if s.support and s.recall < 0.9}
    assert not low, f"held-out recall below 0.9: {low}"


# -- truncation and normalisation ------------------------------------------------------------------


# Only messages whose deciding words lie within the first 200 characters can survive Batch's cut.
DECIDED_EARLY = [row for row in CORPUS if classify(row["message"][:DECISIVE_WITHIN]) == row["class"]]


@pytest.mark.parametrize("sample", DECIDED_EARLY, ids=lambda s: f"{s['class']}:{s['message'][:50]}")
def test_batch_cut_keeps_the_class_when_the_decisive_words_survive(sample: Sample) -> None:
    assert classify(sample["message"][:BATCH_LIMIT] + "...") == sample["class"]


def test_most_corpus_messages_are_decided_early() -> None:
    assert len(DECIDED_EARLY) >= 0.8 * len(CORPUS)


@pytest.mark.parametrize(
    ("fragment", "keep", "expected"),
    [
        # Corpus messages cut mid-word right after `keep`, as Batch does.
        ("artifactoryserver.com:1", "401 Unauthor", FailureClass.AUTH),
        ("terraform-aws-ecs-fargate/issues/50", "context deadli", FailureClass.SECRET_RETRIEVAL),
        ("template-starter", "manifest unkn", FailureClass.NOT_FOUND),
        ("docker/hub-feedback/issues/2429", "toomanyreq", FailureClass.RATE_LIMIT),
        ("library/postgres/manifests/10", "TLS handshake time", FailureClass.NETWORK),
    ],
)
def test_mid_word_cut(fragment: str, keep: str, expected: FailureClass) -> None:
    message = _corpus_message(fragment)["message"]
    cut = message[: message.index(keep) + len(keep)] + "..."
    assert classify(cut) == expected


@pytest.mark.parametrize("sample", CORPUS, ids=lambda s: f"{s['class']}:{s['message'][:50]}")
def test_curly_quotes_do_not_change_the_class(sample: Sample) -> None:
    assert classify(_curly(sample["message"])) == sample["class"]


def test_normalise_folds_quotes_case_whitespace_and_the_cut_mark() -> None:
    raw = "The task can\u2019t  retrieve\n\tthe secret \u201cX\u201d \u2013 CHECK it\u2026"
    assert normalise(raw) == 'the task can\'t retrieve the secret "x" - check it'
    assert normalise("  pull access denied  ") == "pull access denied"
    assert normalise("401 Unauthor...") == "401 unauthorized"
    # Only a cut completes a stub; a whole message ending in a stub is left alone.
    assert normalise("401 Unauthor") == "401 unauthor"


@pytest.mark.parametrize("empty", [None, "", "   ", "\n\t"])
def test_empty_is_other(empty: str | None) -> None:
    assert classify(empty) is FailureClass.OTHER


def test_very_long_input_does_not_crash() -> None:
    # Linear patterns and a bounded head/tail window: these return promptly (no timing assertion).
    assert classify("a" * 100_000 + "!") is FailureClass.OTHER
    assert classify("a" * 1_000_000 + "...") is FailureClass.OTHER
    assert classify(":" * 1_000_000) is FailureClass.OTHER
    assert classify(("x" * 50 + " ") * 20_000) is FailureClass.OTHER
    wrapped = "CannotPullContainerError: " + "x" * 1_000_000 + " toomanyrequests: Too Many Requests."
    assert classify(wrapped) is FailureClass.RATE_LIMIT


# -- precedence (each case is a corpus message) -----------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        # The secret stage wins over the words describing why the secret call failed.
        (
            "RequestCanceled: request context canceled caused by: context deadline exceeded. Please",
            FailureClass.SECRET_RETRIEVAL,
        ),
        ("devpolaris-orders-ecs-execution/ecs-task is not authorized", FailureClass.SECRET_RETRIEVAL),
        ("invalid character '\\'' looking for beginning of value", FailureClass.SECRET_FORMAT),
        ("did not contain json key connectionString", FailureClass.SECRET_FORMAT),
        # Docker's ambiguous wrapper, unless a credential-specific reason follows it.
        ("pull access denied for ecs-task-kite", FailureClass.AUTH_OR_NOT_FOUND),
        ("insufficient_scope: authorization failed", FailureClass.AUTH_OR_NOT_FOUND),
        ("authorization failed: no basic auth credentials", FailureClass.AUTH),
        ("MyBrokenRole/xyz is not authorized to perform: ecr:BatchGetImage", FailureClass.AUTH),
        # A 401/403 on the manifest is auth.
        ("[manifests 1]: 401 Unauthorized", FailureClass.AUTH),
        ("bedrock-proxy-api-ecs:latest@sha256", FailureClass.AUTH),
        # A 429 decides even behind containerd's "failed to copy: ... unexpected status code".
        ("cypress/included", FailureClass.RATE_LIMIT),
        # Platform beats containerd's trailing "not found"; a network cause beats a token failure.
        ("no match for platform in manifest: not found", FailureClass.PLATFORM_MISMATCH),
        ('docker.ketches.cn/library/nginx:latest": failed to authorize', FailureClass.NETWORK),
        # Other stages keep their misleading words from deciding.
        ("The specified log group does not exist", FailureClass.OTHER),
        ("try login registry: invalid character '<'", FailureClass.OTHER),
    ],
)
def test_precedence(fragment: str, expected: FailureClass) -> None:
    assert classify(_corpus_message(fragment)["message"]) == expected


def test_pull_classes_are_all_but_other() -> None:
    assert frozenset(FailureClass) - PULL_CLASSES == {FailureClass.OTHER}


# -- CLI -------------------------------------------------------------------------------------------

AUTH_MSG = "Error response from daemon: unauthorized: authentication required"
RATE_MSG = "ERROR: toomanyrequests: Too Many Requests."


def _args(*messages: str, as_json: bool = False) -> argparse.Namespace:
    return argparse.Namespace(message=list(messages), json=as_json, func=cmd_classify)


def test_cli_classifies_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_classify(_args(AUTH_MSG, RATE_MSG)) == 0
    assert capsys.readouterr().out.splitlines() == [f"auth\t{AUTH_MSG}", f"rate_limit\t{RATE_MSG}"]


def test_cli_reads_stdin_lines_and_skips_empty_ones(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{RATE_MSG}\n\n   \n{AUTH_MSG}\r\n"))
    assert cmd_classify(_args()) == 0
    assert capsys.readouterr().out.splitlines() == [f"rate_limit\t{RATE_MSG}", f"auth\t{AUTH_MSG}"]


def test_cli_json_keeps_input_order(capsys: pytest.CaptureFixture[str]) -> None:
    messages = [RATE_MSG, "", AUTH_MSG, "no space left on device"]
    assert cmd_classify(_args(*messages, as_json=True)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"class": "rate_limit", "message": RATE_MSG},
        {"class": "other", "message": ""},
        {"class": "auth", "message": AUTH_MSG},
        {"class": "other", "message": "no space left on device"},
    ]


def test_cli_tsv_keeps_one_line_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_classify(_args("Trying to pull repository x ... \nunauthorized: authentication required")) == 0
    assert (
        capsys.readouterr().out
        == "auth\tTrying to pull repository x ... unauthorized: authentication required\n"
    )


def test_cli_parser_wiring(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="regcred")
    add_classify_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["classify", "--json", RATE_MSG])
    assert args.func is cmd_classify
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out) == {"class": "rate_limit", "message": RATE_MSG}
