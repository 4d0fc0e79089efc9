"""The ``regcred`` operator CLI: one module per command group, argparse nowhere else in the library.

`main` is the console script; `base` holds the exit codes, common flags and output; `onboard`, `secrets`
(check, show, list), `rotation` (rotate, retire), `diagnose` and `classify` register their commands.
"""

import os

# Quiet library logs unless --debug; set before the library builds its Logger.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from .base import ExitCode, Status
from .main import build_parser, main

__all__ = ["ExitCode", "Status", "build_parser", "main"]
