"""regcred: keeps the private-registry credentials of AWS Batch and ECS jobs alive."""

__version__ = "0.1.0"
