"""Classify the image-pull failure text that Batch and ECS put on a stopped job or task.

Batch writes it to ``detail.attempts[].container.reason`` (cut at 255 characters, usually ending in
``...``); ECS to ``detail.containers[].reason`` and ``detail.stoppedReason``. The text is whatever the
ECS agent, Docker, containerd or the registry said, so the rules below match wording *families*,
registry error codes (``UNAUTHORIZED``, ``DENIED``, ``TOOMANYREQUESTS``, ``MANIFEST_UNKNOWN``,
``NAME_UNKNOWN``) and HTTP status codes rather than whole sentences.

Everything here is pure: no I/O except in the ``classify`` CLI handler at the bottom.

Precedence, first match wins (each step says why it sits where it does):

1. Secret stage. ``unable to pull secrets or registry auth`` / ``unable to retrieve secret from asm``
   means the task never reached the registry, so words later in the message (``context deadline
   exceeded``, ``AccessDeniedException``, ``is not authorized to perform``) describe the call to
   Secrets Manager, SSM or KMS, not the pull. A JSON/schema complaint there is ``secret_format``;
   anything else is ``secret_retrieval``. Rotating a credential fixes neither. The one exception is
   the same wrapper around ``unable to retrieve ecr registry auth``: that is ECR's token, not a
   secret, so the cause after it decides.
2. Other stages (disk full, logging driver, OOM, role assumption, bad image reference, the
   ``Cannot{Create,Start,Inspect,Stop}ContainerError`` stages after the pull): these can carry
   misleading words (``network configuration``, ``ResourceNotFoundException``, ``timed out``) but
   are not pull failures regcred can act on.
3. Rate limiting, before auth: Docker Hub answers a throttled token request with 429, and the
   message then also says ``failed to fetch anonymous token``.
4. Platform mismatch (Docker, containerd, podman and the runtime's ``exec format error``), before
   not-found: containerd ends it with ``no match for platform in manifest: not found``.
5. Credential-specific refusals (``no basic auth credentials``, ``incorrect username or password``,
   GitLab ``HTTP Basic: Access denied``, an IAM ``is not authorized to perform``): these override the
   ambiguous Docker wrapper below, because they say the credentials themselves were wrong or absent.
6. The ambiguous wrapper: Docker rewrites a registry refusal into ``pull access denied ... repository
   does not exist or may require 'docker login'``; Docker Hub answers ``requested access to the
   resource is denied`` and ``insufficient_scope`` both for a missing repository and for one the
   account cannot read (a token *was* issued, it just lacks the pull scope). Only a probe can tell.
7. A direct refusal (``UNAUTHORIZED``, ``DENIED``, 401/403, ``forbidden``) is ``auth``. Quay, GHCR
   and ACR also answer this way for a repository that does not exist; ``auth`` triggers a probe
   anyway, and the probe settles it.
8. Not found (``MANIFEST_UNKNOWN``, ``NAME_UNKNOWN``, 404, ``not found``, ``does not exist``).
9. Network (timeouts, DNS, refused or reset connections, cancelled requests).
10. The ECS agent's own advice with the cause cut off ("verify that the image URI is correct. Also
    check ... permissions") is ``auth_or_not_found``: it is what the agent says for either.
11. A failed token fetch with no status and no network cause (``failed to fetch anonymous token``):
    the registry would not hand out a token, which is an auth problem.
12. Anything else is ``other`` (including a bare 5xx, which says nothing about credentials).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from enum import StrEnum


class FailureClass(StrEnum):
    """What a pull failure means for the credential behind it (see docs/ARCHITECTURE.md, "Pull failures")."""

    AUTH = "auth"
    AUTH_OR_NOT_FOUND = "auth_or_not_found"
    SECRET_RETRIEVAL = "secret_retrieval"  # noqa: S105 - a class name
    SECRET_FORMAT = "secret_format"  # noqa: S105 - a class name
    RATE_LIMIT = "rate_limit"
    NOT_FOUND = "not_found"
    NETWORK = "network"
    PLATFORM_MISMATCH = "platform_mismatch"
    OTHER = "other"


PULL_CLASSES: frozenset[FailureClass] = frozenset(c for c in FailureClass if c is not FailureClass.OTHER)

# Real reasons are at most a few KiB; anything bigger is pasted logs. Keeping the head and the
# tail bounds the work per message while keeping both the wrapper (head) and the cause (tail).
_HEAD_CHARS = 16_384
_TAIL_CHARS = 4_096

# The ECS agent writes U+2019 in "can't"; pasted text brings the rest. Dashes and odd spaces are
# folded too so a Harbor repository name or a console copy does not split a phrase.
_TRANSLATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u2026": "...",
    }
)
_WHITESPACE = re.compile(r"\s+")
_CUT_MARK = "..."
# Only the end of the text is searched for the stub: an anchored search over a long run of
# letters would otherwise be quadratic.
_LAST_WORD = re.compile(r"([a-z_]{4,})$")
_STUB_WINDOW = 32

# When Batch cuts a reason mid-word, the stub of a deciding word is all that is left
# ("... 401 Unauthor..."). Only these words are completed, and only at a cut.
_CUT_COMPLETIONS = (
    "unauthorized",
    "forbidden",
    "toomanyrequests",
    "timeout",
    "deadline",
    "unknown",
    "denied",
    "platform",
    "descriptor",
)


def _rx(*alternatives: str) -> re.Pattern[str]:
    # Alternations of literal-ish phrases with bounded gaps only: no nested quantifiers, so every
    # search is linear in the message length (a 1 MB adversarial message must not hang a Lambda).
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


# 1. Secret stage: the task could not read (or parse) the repositoryCredentials / secrets.
_SECRET_STAGE = _rx(
    r"unable to pull secrets",
    r"execution resource retrieval failed",
    r"unable to (?:retrieve|get) (?:registry auth|secrets?) from (?:asm|ssm)",
    r"\basm fetching\b",
    r"retrieve the secret with arn",
    r"failed to fetch secrets? arn",
    r"\bgetsecretvalue\b",
    r"secrets manager can't find",
    r"secretsmanagerregistryauthenticationerror",
)
# The same wrapper also covers the ECR token the agent fetches with the execution role. That is
# not a secret regcred manages, so the cause after it (usually the network) decides instead.
_ECR_AUTH_STAGE = _rx(r"unable to retrieve ecr registry auth")
_SECRET_SOURCE = _rx(r"\b(?:asm|ssm)\b", r"secrets ?manager", r"\bsecrets? arn")
# Schema problems the ECS agent reports on its own, with or without the stage wrapper.
_SECRET_FORMAT_OWN = _rx(
    r"authorizationdata is malformed",
    r"unable to unmarshal secret value",
    r"empty secrets? value",
    r"missing secretstring",
    r"did not contain json key",
    r"secret[^.]{0,120}is not valid json",
)
# Generic JSON complaints, only meaningful inside the secret stage (elsewhere a registry that
# answers HTML produces the same "invalid character '<'").
_SECRET_FORMAT_IN_STAGE = _rx(
    r"invalid character",
    r"unexpected end of json",
    r"cannot unmarshal",
    r"not valid json",
    r"\binvalid schema\b",
    r"(?:username|password)[^.]{0,40}(?:missing|empty|required)",
)

# 2. Stages after (or beside) the pull that regcred does not act on.
_OTHER_STAGE = _rx(
    r"no space left on device",
    r"failed to validate logger args",
    r"failed to initialize logging driver",
    r"outofmemoryerror",
    r"killed due to memory",
    r"essential container in task exited",
    r"mount callback failed",
    r"unable to assume the role",
    r"cannot(?:start|create|inspect|stop)containererror",
    r"invalid reference format",
    r"repository name component must match",
)

# A status code only counts right after a status-ish word or separator, so digests, ports and
# request ids that happen to contain the digits do not.
_STATUS = r"(?:status|code|http|response|error|\]|:)\W{0,3}"

# 3.
_RATE_LIMIT = _rx(
    r"toomanyrequests",
    r"too many requests",
    r"rate limit",
    r"rate exceeded",
    r"throttl",
    _STATUS + r"429\b",
)
# 4.
_PLATFORM = _rx(
    r"no matching manifest for",
    r"no match for platform",
    r"descriptor (?:matching|for) platform",
    r"does not match the specified platform",
    r"platform \([^)]{1,40}\) does not match",
    r"no image found in (?:image index|manifest list) for architecture",
    r"exec format error",
)
# 5.
_AUTH_CREDENTIALS = _rx(
    r"no basic auth credentials",
    r"incorrect username or password",
    r"invalid username(?:/| or )password",
    r"http basic: access denied",
    # "to perform: ecr:BatchGetImage"; Batch's cut often leaves only "is not authorized to p".
    r"is not authorized to\b",
    r"check that the role has the permissions to pull",
)
# 6.
_AUTH_OR_NOT_FOUND = _rx(
    r"pull access denied",
    r"does not exist or may require",
    r"may require 'docker login'",
    r"requested access to the resource is denied",
    r"insufficient_scope",
    r"does not exist or no pull access",
)
# 7.
_AUTH_DIRECT = _rx(
    r"\bunauthori[sz]ed\b",
    r"\bforbidden\b",
    r"(?<!permission )\bdenied\b",
    r"authentication required",
    r"\bnot authorized\b",
    r"does not have permission",
    _STATUS + r"40[13]\b",
)
# 8.
_NOT_FOUND = _rx(
    r"manifest[ _]unknown",
    r"name[ _]unknown",
    r"not known to (?:the )?registry",
    r"\bnot[ _]found\b",
    r"does not exist",
    r"no such image",
    _STATUS + r"404\b",
)
# 9.
_NETWORK = _rx(
    r"i/o timeout",
    r"\btime ?out\b",
    r"timed out",
    r"dial tcp",
    r"no such host",
    r"connection (?:refused|reset|issue)",
    r"network is unreachable",
    r"no route to host",
    r"(?:request|context) cancell?ed",
    r"context deadline",
    r"could not reach",
    r"temporary failure in name resolution",
    r"server misbehaving",
    r"check your (?:task |host )?network configuration",
)
# 10. (the ambiguous hints come after network: they are the ECS agent's advice, not a cause)
_AUTH_OR_NOT_FOUND_HINT = _rx(
    r"verify that the image uri is correct",
    r"check (?:if|whether) (?:the )?image exists",
)
# 11.
_AUTH_TOKEN = _rx(
    r"failed to fetch (?:anonymous|oauth) token",
    r"failed to authorize",
    r"requesting bearer token",
    r"failed to obtain oauth",
)

# Steps 3 to 11 of the module docstring, in order.
_ORDERED: tuple[tuple[re.Pattern[str], FailureClass], ...] = (
    (_RATE_LIMIT, FailureClass.RATE_LIMIT),
    (_PLATFORM, FailureClass.PLATFORM_MISMATCH),
    (_AUTH_CREDENTIALS, FailureClass.AUTH),
    (_AUTH_OR_NOT_FOUND, FailureClass.AUTH_OR_NOT_FOUND),
    (_AUTH_DIRECT, FailureClass.AUTH),
    (_NOT_FOUND, FailureClass.NOT_FOUND),
    (_NETWORK, FailureClass.NETWORK),
    (_AUTH_OR_NOT_FOUND_HINT, FailureClass.AUTH_OR_NOT_FOUND),
    (_AUTH_TOKEN, FailureClass.AUTH),
)


def normalise(message: str) -> str:
    """Fold a reason into the form the patterns expect.

    Curly quotes and dashes become ASCII, every run of whitespace (newlines from console copies
    included) one space, case is folded, and a trailing ``...`` (Batch's cut marker) is dropped;
    when that cut split one of a few deciding words, the word is completed.
    """
    if len(message) > _HEAD_CHARS + _TAIL_CHARS:
        message = message[:_HEAD_CHARS] + " " + message[-_TAIL_CHARS:]
    text = _WHITESPACE.sub(" ", message.translate(_TRANSLATION)).strip().casefold()
    if not text.endswith(_CUT_MARK):
        return text
    text = text[: -len(_CUT_MARK)].rstrip()
    stub = _LAST_WORD.search(text[-_STUB_WINDOW:])
    if stub is not None:
        for word in _CUT_COMPLETIONS:
            if word.startswith(stub.group(1)) and word != stub.group(1):
                return text + word[len(stub.group(1)) :]
    return text


def _in_secret_stage(text: str) -> bool:
    if not _SECRET_STAGE.search(text):
        return False
    return not _ECR_AUTH_STAGE.search(text) or bool(_SECRET_SOURCE.search(text))


def classify(message: str | None) -> FailureClass:
    """Return the one class a stopped job's or task's reason text belongs to.

    ``None``, empty and whitespace-only text is ``other``. See the module docstring for the
    precedence between classes.
    """
    if not message or message.isspace():
        return FailureClass.OTHER
    text = normalise(message)
    if _SECRET_FORMAT_OWN.search(text):
        return FailureClass.SECRET_FORMAT
    if _in_secret_stage(text):
        if _SECRET_FORMAT_IN_STAGE.search(text):
            return FailureClass.SECRET_FORMAT
        return FailureClass.SECRET_RETRIEVAL
    if _OTHER_STAGE.search(text):
        return FailureClass.OTHER
    for pattern, cls in _ORDERED:
        if pattern.search(text):
            return cls
    return FailureClass.OTHER


# -- CLI ------------------------------------------------------------------------------------------


def _one_line(message: str) -> str:
    # The TSV form is one record per line; JSON keeps the message exactly.
    return _WHITESPACE.sub(" ", message).strip()


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify each MESSAGE argument, or each non-empty stdin line when none is given.

    Prints ``CLASS<TAB>MESSAGE`` per message, or one ``{"class", "message"}`` JSON object per line
    with ``--json``, in input order. Always exits 0: an unrecognised message is ``other``.
    """
    messages: list[str] = list(args.message or [])
    if not messages:
        messages = [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    for message in messages:
        cls = classify(message)
        if args.json:
            sys.stdout.write(json.dumps({"class": cls.value, "message": message}) + "\n")
        else:
            sys.stdout.write(f"{cls.value}\t{_one_line(message)}\n")
    return 0


def add_classify_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``classify [--json] [MESSAGE...]`` on the CLI's subcommands."""
    parser = sub.add_parser(
        "classify",
        help="classify pull-failure reasons (arguments, or one per stdin line)",
        description="Print the failure class of each Batch/ECS stopped reason.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("message", nargs="*", metavar="MESSAGE", help="reason text; stdin when omitted")
    parser.set_defaults(func=cmd_classify)
