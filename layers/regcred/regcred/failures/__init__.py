"""Classify the image-pull failure text that Batch and ECS put on a stopped job or task.

Batch writes it to ``detail.attempts[].container.reason`` (cut at 255 characters, with or without a
trailing ``...``); ECS to ``detail.containers[].reason`` and ``detail.stoppedReason``. The text is
whatever the ECS agent, Docker, containerd (Fargate platform 1.4+ and newer agents), a Windows host or
the registry said, so the rules match wording *families* keyed on structural signals: registry error
codes (``UNAUTHORIZED``, ``DENIED``, ``NAME_UNKNOWN``, ``MANIFEST_UNKNOWN``, ``TOOMANYREQUESTS``), HTTP
status words and numbers, and the fixed phrases of the ECS agent, Docker, containerd and Go's
``net/http``/``crypto/x509`` (see :mod:`regcred.failures.patterns`), not whole sentences of one
registry. Everything here is pure; the ``regcred classify`` command lives in `regcred.cli.classify`.

Precedence, first match wins (each step says why it sits where it does; ``tests/unit/test_failures.py``
tests each one with a real message):

0. Docker's ``Unable to find image 'X' locally`` (what ``docker run`` prints before every pull it makes)
   is a miss of the local cache, not an answer from the registry: it is cut out before any step looks,
   so the failure after it decides (a ``502 Bad Gateway`` after it is ``other``, not ``not_found``).
1. Secret stage. ``unable to pull secrets or registry auth`` / ``unable to retrieve secret from asm`` /
   ``invalid ssm parameters`` means the task never reached the registry, so words later in the message
   (``context deadline exceeded``, ``AccessDeniedException``, ``is not authorized to perform``) describe
   the call to Secrets Manager, SSM or KMS, not the pull. A JSON/schema complaint there is
   ``secret_format``; anything else is ``secret_retrieval``. Rotating a credential fixes neither. The one
   exception is the same wrapper around ``unable to retrieve ecr registry auth`` (or the agent's "There is
   a connection issue between the task and Amazon ECR"): that is ECR's token, not a secret, so the cause
   after it decides (an ``AccessDeniedException`` is ``auth``, ``send request failed`` is ``network``).
2. Platform mismatch (Docker, containerd, podman, the runtime's ``exec format error``, and a Windows
   host's "a Windows version X-based image is incompatible with a Y host" / "image operating system
   ... cannot be used on this platform", "the operating system of the container does not match the
   operating system of the host"), before the other stages because a Windows host reports it
   through ``hcsshim``, and before not-found because containerd ends it with ``no match for platform in
   manifest: not found``.
3. Other stages (disk full, logging driver, OOM, role assumption, bad image reference, the
   ``Cannot{Create,Start,Inspect,Stop}ContainerError`` stages after the pull, the agent's own
   ``ContainerRuntimeTimeoutError``/``DockerTimeoutError``, a broken local runtime (``error during
   connect``, ``hcsshim``, ``re-exec error``), a registry's vulnerability policy): these carry misleading
   words (``network configuration``, ``ResourceNotFoundException``, ``timed out``, ``permission
   denied``) but are not pull failures regcred can act on.
4. Rate limiting (``TOOMANYREQUESTS``, 429, ``Rate exceeded``, the kubelet's ``pull QPS exceeded``),
   before auth: Docker Hub answers a throttled token request with 429, and the message then also says
   ``failed to fetch anonymous token``.
5. The ambiguous wording is set aside first: Docker's ``pull access denied ... repository does not
   exist or may require 'docker login'`` (older: ``repository X not found: does not exist or no pull
   access``), containerd's ``... may require authorization``, Docker Hub's ``requested access to the
   resource is denied`` and ``insufficient_scope``. Each means "missing, or not yours to read". The
   remaining text is then judged on its own details (6 and 7). The old kubelet's hedge ("this may be
   because there are no credentials on this request. details: (...)") is set aside too, but a not-found
   inside it does not decide (old Docker said "Error: image X not found" for both causes): only a registry
   code (6), an explicit credential detail (7), a bare refusal (9) or a network cause (11) does, else it is
   ``auth_or_not_found``.
6. A registry code that is only sent once the request was authorised (``MANIFEST_UNKNOWN``, ``NAME_UNKNOWN``,
   ``BLOB_UNKNOWN``, Docker's ``unknown blob``) is ``not_found``, even when another attempt in the same
   message was refused (kubelet tries with and without the pull secret). Likewise containerd's gRPC ``code =
   NotFound ...: not found`` for the attempt with the pull secret, when the only refusal beside it is the
   retry without credentials (``failed to fetch anonymous token``, no ``oauth token`` refusal).
7. An explicit credential detail is ``auth`` and beats the ambiguous wording: 401, ``unauthorized``,
   ``authentication required``, an invalid or expired token, ``no basic auth credentials``,
   ``incorrect username or password``, GitLab's ``HTTP Basic: Access denied``, a token scoped to another
   repository (``does not match bearer token resource``), an IAM ``is not
   authorized to perform`` / ``AccessDeniedException``, a permission denied on the resource, 403 /
   ``forbidden``. This includes Docker Hub's second code in ``denied: requested access to the resource
   is denied`` + ``unauthorized: authentication required``: the explicit 401 decides.
8. With the ambiguous wording and no explicit detail: a spelled-out not-found detail beside it
   (``manifest for X not found``, ``does not exist``, but not Docker's own ``API error (404)``, which is
   the status of the wrapper) is ``not_found``; otherwise ``auth_or_not_found``. Only a probe can tell.
9. A bare refusal code (``denied``, GHCR's ``denied: denied``, GitLab's ``denied: access forbidden``) is
   ``auth``. Quay, GHCR and ACR also answer this way for a repository that does not exist; ``auth``
   triggers a probe anyway, and the probe settles it. Not when an explicit status that is no refusal
   stands beside it (a registry-side 5xx, 400, 412: ACR's "Access to registry ... was denied. Response
   code: 504"); Docker's ``(HTTP code 500) server error`` is its own API's status and does not count.
10. Not found (``not found``, ``does not exist``, ``no such image``, 404).
11. Network: an egress proxy that would not open the tunnel (``Tunnel connection failed``, ``Unable to connect
    to proxy``, Go's ``proxyconnect tcp``) comes first, before step 6, because its ``403 Forbidden`` is the
    proxy's, not the registry's. Then timeouts, DNS, refused or reset connections, cancelled requests,
    containerd's ``failed to do request`` (it wraps transport errors only), the AWS SDK's ``send request
    failed``, an ``EOF`` from ``/v2/`` or a manifest, TLS and ``x509`` failures, "server gave HTTP response to
    HTTPS client". A registry-side 5xx is not a credential failure: with no such cause (a proxy's "504 Gateway
    Timeout" included) it falls through to ``other`` (13), and an explicit 401/403 beside it still decides
    (7).
12. The ECS agent's own advice with the cause cut off ("verify that the image URI is correct",
    "Check whether the image exists") and Azure Container Instances' ``InaccessibleImage`` ("check the
    image and registry credential") are ``auth_or_not_found``; a failed token fetch with no status and
    no network cause (``failed to fetch anonymous token``) is ``auth``, but one answered with a status that
    is no refusal (``invalid status code from registry 412``) is ``other``.
13. Anything else is ``other``.

Batch's cut: a reason ending in ``...`` or exactly 255 characters long was cut, and when the cut split
one of a few deciding words (``401 Unauthor...``) the word is completed before matching.
"""

from __future__ import annotations

from .classes import PULL_CLASSES, FailureClass
from .rules import classify, normalise

__all__ = [
    "PULL_CLASSES",
    "FailureClass",
    "classify",
    "normalise",
]
