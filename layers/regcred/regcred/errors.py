"""One exception type per failure an operator can act on. Messages say what to do and never
carry a secret value."""


class RegcredError(Exception):
    """Base of every error regcred raises on purpose. Its message is scrubbed of every secret value the
    process knows (regcred.redact), whatever the code that raised it put in."""

    def __init__(self, *args: object) -> None:
        from .redact import scrub

        super().__init__(*(scrub(a) if isinstance(a, str) else a for a in args))


class ConfigurationError(RegcredError):
    """The managed secret or its tags are not set up as regcred needs; the message says which."""


class InvalidEvent(RegcredError):
    """An event is not one the function handles (not an object, missing or empty fields)."""


class SecretFormatError(RegcredError):
    """A secret value is not the JSON regcred (and ECS) can read."""


class RegistryError(RegcredError):
    """The registry could not be checked (bad challenge, untrusted realm, protocol error)."""


class ChallengeParseError(RegistryError):
    """A WWW-Authenticate header could not be parsed."""


class UntrustedRealmError(RegistryError):
    """A token realm is not one the secret trusts: the credential was not sent."""


class ProviderError(RegcredError):
    """The vendor API refused or failed a call."""


class ProviderAuthError(ProviderError):
    """The administrative credential was rejected by the vendor API."""


class RotationError(RegcredError):
    """A rotation step cannot proceed; AWSCURRENT is left as it was."""


class RotationTestFailed(RotationError):
    """The pending credential could not pull; it was revoked and AWSCURRENT is untouched."""


class RotationRetryable(RotationError):
    """The pending credential could not be checked (registry unreachable, rate limited);
    AWSPENDING is kept so that a retry of the same step can finish the rotation."""


class TransportError(RegcredError):
    """An outbound HTTP request was refused or could not complete (regcred.http). The message names the
    destination's origin and the reason, never a header, a query string or a body."""


class DestinationRefused(TransportError):
    """The destination, a redirect or a link is not one regcred may send this request to: nothing was sent."""


class Unreachable(TransportError):
    """The request could not complete (connection, TLS, timeout, protocol). ``sent`` says whether the request
    may have reached the server."""

    def __init__(self, message: str, *, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


class DeadlineExceeded(Unreachable):
    """The operation's deadline passed before the request could complete."""


class OutcomeUnknown(Unreachable):
    """A request that is not idempotent (a mint) may have been processed, but no answer came: it is never
    sent again; the caller resolves it by looking the result up."""


class ResponseTooLarge(TransportError):
    """The server's headers or body exceeded regcred's bounds; the response was dropped."""


class MintOutcomeUnknown(ProviderError):
    """The vendor may have minted a credential whose secret never reached regcred (timeout, 502/504). The
    mint is never repeated in the same step: the caller finds the credential by its label and revokes it."""
