"""The wording families the rules match, one compiled alternation per family.

Every pattern runs on :func:`regcred.failures.normalise` output (case-folded, ASCII quotes, one space
per run of whitespace). Each is an alternation of literal-ish phrases with bounded gaps only: no nested
quantifiers, so every search is linear in the message length (a 1 MB adversarial message must not hang
a Lambda). The families are keyed on what the producers print verbatim: registry error codes
(``UNAUTHORIZED``, ``DENIED``, ``NAME_UNKNOWN``, ``MANIFEST_UNKNOWN``, ``TOOMANYREQUESTS``), HTTP status
words and numbers, and the fixed phrases of the ECS agent, Docker, containerd, CRI-O/podman and Go's
``net/http``, ``crypto/x509`` and ``net`` packages.
"""

from __future__ import annotations

import re


def rx(*alternatives: str) -> re.Pattern[str]:
    """One pattern matching any of ``alternatives`` (each wrapped in a non-capturing group)."""
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


# A status code only counts right after a status-ish word or separator, so digests, ports and
# request ids that happen to contain the digits do not.
STATUS = r"(?:status|code|http|response|error|\]|:)\W{0,3}"

# -- 0. Notices that are not failures ----------------------------------------------------------------

# ``docker run`` prints "Unable to find image 'X' locally" before every pull it makes: a miss of the
# local cache, not an answer from the registry. It is cut out before any rule looks, so the failure
# after it decides (a 502 after it is not a missing image).
LOCAL_CACHE_MISS = re.compile(r"unable to find image \S{1,300} locally")

# -- 1. The ECS agent's secret stage ---------------------------------------------------------------

# The task could not read (or parse) the repositoryCredentials / secrets before any pull started.
SECRET_STAGE = rx(
    r"(?:unable to|cannot|can't) pull (?:the )?secrets?\b",
    r"execution resource retrieval failed",
    r"unable to (?:retrieve|get) (?:registry auth|secrets?) from (?:asm|ssm)",
    r"\basm fetching\b",
    r"retrieve the secret with arn",
    r"failed to fetch secrets? arn",
    r"\bgetsecretvalue\b",
    r"secrets manager can't find",
    r"secretsmanagerregistryauthenticationerror",
    r"invalid ssm parameters?\b",
    r"fetching secret data from ssm",
    r"(?:asm|ssm) secret resource",
    r"systems manager parameter store",
)
# The same wrapper also covers the ECR token the agent fetches with the execution role. That is
# not a secret regcred manages, so the cause after it decides instead.
ECR_AUTH_STAGE = rx(
    r"unable to retrieve ecr registry auth",
    r"registry auth from amazon ecr",
    r"connection issue between the task and amazon ecr",
    r"operation error ecr: getauthorizationtoken",
)
SECRET_SOURCE = rx(r"\b(?:asm|ssm)\b", r"secrets ?manager", r"\bsecrets? arn")
# Schema problems the ECS agent reports on its own, with or without the stage wrapper.
SECRET_FORMAT_OWN = rx(
    r"authorizationdata is malformed",
    r"unable to unmarshal secret value",
    r"empty secrets? value",
    r"missing secretstring",
    r"did not contain json key",
    r"secret[^.]{0,120}is not valid json",
)
# Generic JSON complaints, only meaningful inside the secret stage (elsewhere a registry that
# answers HTML produces the same "invalid character '<'").
SECRET_FORMAT_IN_STAGE = rx(
    r"invalid character",
    r"unexpected end of json",
    r"cannot unmarshal",
    r"not valid json",
    r"\binvalid schema\b",
    r"(?:username|password)[^.]{0,40}(?:missing|empty|required)",
)

# -- 2. Platform (before the other stages: a Windows host reports it through hcsshim) ----------------

PLATFORM = rx(
    r"no matching manifest for",
    r"no match for platform",
    r"descriptor (?:matching|for) platform",
    r"does not match the specified platform",
    r"platform \([^)]{1,40}\) does not match",
    r"no image found in (?:image index|manifest list) for architecture",
    r"exec format error",
    r"image operating system \S{1,12} cannot be used on this platform",
    r"based image is incompatible with (?:a|the) [\d.]{1,20} host",
    r"container operating system does not match the host operating system",
    # hcsshim's ERROR_CONTAINER_OS_MISMATCH wording (a Windows host).
    r"operating system of the container does not match the operating system of the host",
)

# -- 3. Stages after (or beside) the pull that regcred does not act on ------------------------------

OTHER_STAGE = rx(
    r"no space left on device",
    r"failed to validate logger args",
    r"failed to initialize logging driver",
    r"outofmemoryerror",
    r"killed due to memory",
    r"essential container in task exited",
    r"mount callback failed",
    r"unable to assume (?:the )?role",
    r"cannot(?:start|create|inspect|stop)containererror",
    r"invalid reference format",
    r"repository name component must match",
    r"repository name must be canonical",
    # The agent's own state machine, not the registry, timed out.
    r"(?:containerruntime|docker)timeouterror",
    r"could not transition to",
    # The local container runtime, not the registry, is broken.
    r"error during connect",
    r"cannot connect to the docker daemon",
    r"permission denied while trying to connect",
    r"unix:///\S{1,200}\.sock",
    # A local path refused by the kernel (EPERM/EACCES), not a registry refusal.
    r"/[^\s:\"]{1,200}: (?:permission denied|operation not permitted)",
    r"operation not permitted",
    r"\bhcsshim\b",
    r"re-exec error",
    r"oci runtime create failed",
    r"resource cannot be initialized for task",
    # A registry policy, not a credential, refused the artifact.
    r"cannot be pulled due to configured policy",
    r"project_?policy_?violation",
)

# -- 4. Rate limiting --------------------------------------------------------------------------------

RATE_LIMIT = rx(
    r"toomanyrequests",
    r"too many requests",
    r"rate limit",
    r"rate exceeded",
    r"throttl",
    r"quota exceeded",
    r"\bhap429\b",
    # The kubelet's own limit on pulls per second (registryPullQPS).
    r"pull qps exceeded",
    STATUS + r"429\b",
)

# -- 5. The ambiguous wording: "no such repository, or no access to it" -----------------------------

# Docker rewrites a registry's DENIED into "pull access denied ... may require 'docker login'"
# (older versions: "repository X not found: does not exist or no pull access"); containerd writes
# "pull access denied, repository does not exist or may require authorization: server message: ..."; Docker
# Hub answers "requested access to the resource is denied" and "insufficient_scope" both for a missing
# repository and for one the account cannot read. These phrases are cut out of the text before the
# explicit details around them are looked at, so their own words ("denied", "authorization", "does
# not exist", "not found") never decide.
AMBIGUOUS = rx(
    r"pull access denied(?: for [^\s,]{1,300})?(?:, repository does not exist"
    r"(?: or may require (?:'docker login'|authori[sz]ation|authentication))?)?",
    r"(?:repository [^\s:]{1,300} not found: )?does not exist or no pull access",
    r"(?:repository )?does not exist or may require (?:'docker login'|authori[sz]ation|authentication)",
    r"may require 'docker login'",
    r"(?:denied: )?requested access to the resource is denied",
    r"insufficient_scope(?:: authorization failed)?",
)

# -- 6. Registry codes that are only sent after the request was authorised ---------------------------

NOT_FOUND_CODE = rx(
    r"manifest[ _]unknown",
    r"name[ _]unknown",
    r"blob[ _]unknown",
    # Docker's wording of BLOB_UNKNOWN ("error pulling image configuration: unknown blob").
    r"unknown blob",
)
# The kubelet's attempt with the pull secret answered by containerd's gRPC NotFound, then its retry
# without credentials refused ("[rpc error: code = NotFound ...: not found, rpc error: ... failed to
# fetch anonymous token: ... 401 Unauthorized]"): the credentialed attempt decides.
NOT_FOUND_GRPC = rx(r"code = notfound desc = [^\]]*?: not found\b")
ANONYMOUS_RETRY = rx(r"failed to fetch anonymous token")
CREDENTIALED_REFUSAL = rx(r"failed to fetch oauth token")

# -- 7. Explicit credential details -------------------------------------------------------------------

AUTH_EXPLICIT = rx(
    r"no basic auth credentials",
    r"incorrect username or password",
    r"invalid username(?:/| or )password",
    r"http basic: access denied",
    # "to perform: ecr:BatchGetImage"; Batch's cut often leaves only "is not authorized to p".
    r"\bnot authorized\b",
    r"accessdenied(?:exception)?\b",
    r"check that the role has the permissions to pull",
    r"\bunauthori[sz]ed\b",
    r"\bunauthenticated\b",
    r"authentication (?:is )?required",
    r"authentication (?:error|failed)",
    r"authorization token required",
    r"(?:invalid|expired|revoked)[_ ]?(?:access[_ ]|bearer[_ ]|auth[_ ])?token",
    r"\btoken\b[^.;]{0,60}\b(?:is|has|was) (?:invalid|expired|revoked|malformed)",
    r"token (?:has )?expired",
    r"security token included in the request",
    r"unrecognizedclientexception",
    r"bad[_ ]credentials?\b",
    r"(?:invalid|wrong|missing) credentials",
    r"no credentials found",
    # A token for another repository than the one asked for (the token's scope).
    r"does not match bearer token resource",
    r"permission[_ ]denied",
    r"permission \"[^\"]{1,100}\" denied",
    r"(?:does not|doesn't|do not|don't) have (?:the )?(?:needed |required |necessary )?permission",
    r"token exchange failed",
    r"\bforbidden\b",
    STATUS + r"40[13]\b",
)
# A bare refusal code: GHCR's "denied: denied", GitLab's "denied: access forbidden", Quay's and ACR's
# answers for a repository the caller cannot see.
AUTH_DIRECT = rx(r"\bdenied\b", r"access denied")

# -- 8. Not found ---------------------------------------------------------------------------------

NOT_FOUND = rx(
    r"not known to (?:the )?registry",
    r"\bnot[ _]found\b",
    r"does not exist",
    r"no such image",
    r"(?:could not|cannot|can't|unable to) find (?:the )?(?:\w+ )?(?:image|repository|manifest|tag)\b",
    STATUS + r"404\b",
)
# Inside the ambiguous wrapper only a spelled-out detail counts: Docker's own "API error (404)" is the
# status of the wrapper itself.
NOT_FOUND_DETAIL = rx(
    r"\bnot[ _]found\b",
    r"does not exist",
    r"no such image",
    r"not known to (?:the )?registry",
)

# The old kubelet's hedge, "image pull failed for X, this may be because there are no credentials on this
# request. details: (...)": it says so for every failed pull, and old Docker's "Error: image X not found"
# inside it is what Docker said both for a missing image and for one it could not read. Only an explicit
# credential or registry code in the details decides; otherwise only a probe can tell.
NO_CREDENTIALS_HEDGE = re.compile(r"this may be because there are no credentials on this request")

# -- 9. Network ---------------------------------------------------------------------------------------

NETWORK = rx(
    r"i/o timeout",
    r"\btime ?out\b",
    r"timed out",
    r"dial tcp",
    r"no such host",
    r"connection (?:refused|reset|issue|closed)",
    r"forcibly closed",
    r"connect: eacces",
    r"broken pipe",
    r"network is unreachable",
    r"no route to host",
    r"(?:request|context) cancell?ed",
    r"context deadline",
    r"could not reach",
    r"temporary failure in name resolution",
    r"server misbehaving",
    r"check your (?:task |host )?network configuration",
    # containerd wraps only transport errors (no HTTP answer at all) in "failed to do request".
    r"failed to do request",
    # The AWS SDK's transport failure (the ECR token call, here).
    r"send request failed",
    r"(?:read|write) (?:tcp|udp)\b",
    r"\bwsarecv\b",
    # The connection was cut before an answer: an EOF from /v2/ or a manifest, not a refusal.
    r"(?::|\s)(?:unexpected )?eof\b",
    # TLS: the client never talked to the registry's HTTP layer.
    r"\bx509:",
    r"tls: ",
    r"certificate signed by unknown authority",
    r"server gave http response to https client",
    r"first record does not look like a tls handshake",
    r"transport connection broken",
)
# An egress proxy that would not open the tunnel (Python's ProxyError, Go's proxyconnect): its status (a
# "403 Forbidden" to CONNECT, a 407) is the proxy's, not the registry's. Checked before any refusal word.
PROXY_FAILURE = rx(
    r"unable to connect to proxy",
    r"tunnel connection failed",
    r"proxyconnect tcp",
)
# A proxy's "504 Gateway Timeout" is a registry-side 5xx, not a network failure of the host.
GATEWAY_TIMEOUT = re.compile(r"gateway time-?out")
# A socket refused by the host's own firewall or policy ("dial tcp ...: connect: permission denied") is
# a network failure, not the registry's refusal: it is renamed before any refusal word is looked for.
SOCKET_REFUSED = re.compile(r"connect: permission denied")

# -- 10.-11. Hints and token fetches ----------------------------------------------------------------

# The ECS agent's own advice with the cause cut off, and Azure Container Instances' InaccessibleImage:
# what they say for either cause.
AUTH_OR_NOT_FOUND_HINT = rx(
    r"verify that the image uri is correct",
    r"check (?:if|whether) (?:the )?image exists",
    r"check the image and (?:the )?registry credentials?",
)
# An explicit status that is neither a refusal (401, 403), a missing resource (404) nor a limit (429): a
# registry-side 5xx, a 400 or a 412 (a registry's policy precondition). A bare "denied" or a failed token
# request beside it is not a credential failure (ACR's "Access to registry ... was denied. Response code:
# 504"; "Requesting bearer token: invalid status code from registry 412").
NON_CREDENTIAL_STATUS = rx(
    STATUS + r"(?:40[02589]|41\d|5\d\d)\b",
    r"from registry (?:40[02589]|41\d|5\d\d)\b",
)
# Docker's "(HTTP code 500) server error" is the status of the daemon's own API, whatever the registry said:
# cut out before NON_CREDENTIAL_STATUS looks.
DAEMON_API_STATUS = re.compile(r"\(http code \d{3}\) server error")
# A failed token fetch with no status and no network cause: the registry would not hand out a token.
AUTH_TOKEN = rx(
    r"failed to fetch (?:anonymous|oauth) token",
    r"failed to authorize",
    r"requesting bearer token",
    r"failed to obtain oauth",
)
