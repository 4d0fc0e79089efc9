"""regcred's one outbound HTTP transport (destination policy, redirects, bounds, deadline, retries).

`policy` holds the pure rules every request obeys, `deadline` the per-operation clock and `transport`
the urllib3-based client (imported on first use: a function that never calls out does not load urllib3).
"""

from .deadline import Deadline

__all__ = ["Deadline"]
