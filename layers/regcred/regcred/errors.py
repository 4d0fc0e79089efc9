"""One exception type per failure an operator can act on. Messages say what to do and never
carry a secret value."""


class RegcredError(Exception):
    """Base of every error regcred raises on purpose."""


class ConfigurationError(RegcredError):
    """The managed secret or its tags are not set up as regcred needs; the message says which."""


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
