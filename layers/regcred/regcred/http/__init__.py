"""regcred's one outbound HTTP transport (destination policy, redirects, bounds, deadline, retries).

`policy` holds the pure rules every request obeys, `deadline` the per-operation clock, `connection` the
pinned, deadline-bounded connections, `response` the bounded response and its scrubbed error text, and
`transport` the urllib3-based client that ties them together (imported on first use: a function that never
calls out does not load urllib3).
"""

from .deadline import Deadline

__all__ = ["Deadline"]
