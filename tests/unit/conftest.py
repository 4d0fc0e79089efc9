"""Fixtures shared by the unit tests: moto's Secrets Manager and the rotation doubles."""

from tests.rotation_doubles import aws, registry, secret, sm, vendor

__all__ = ["aws", "registry", "secret", "sm", "vendor"]
