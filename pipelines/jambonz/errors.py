"""What the RecentCalls client raises; every message names the scope and the base URL.

    JambonzError
    ├── JambonzAuthError          401: the key was refused (no retry)
    ├── JambonzForbiddenError     403: the key may not read this scope (no retry)
    ├── JambonzBadRequestError    400, or a deterministic 500 such as a bad filter (no retry)
    ├── JambonzUnavailableError   5xx, timeouts, resets, bad bodies, 429s beyond the bounds
    └── IncompleteWindowError     the window could not be made complete; names the shortfall

The last two may pass by themselves (the Dagster layer tries the step again); the first three
need a person. A message must never carry the API key, a request header or an environment dump.
"""

from __future__ import annotations


class JambonzError(Exception):
    """Base of every error the client raises; messages name scope and base URL, never the key."""


class JambonzAuthError(JambonzError):
    """401: the API key was refused."""


class JambonzForbiddenError(JambonzError):
    """403: the key may not read this account or service provider."""


class JambonzBadRequestError(JambonzError):
    """400 (or a deterministic 500 such as a bad filter regex): the request is wrong."""


class JambonzUnavailableError(JambonzError):
    """Retries exhausted: 5xx, timeouts, resets, bad bodies or 429s beyond the bounds."""


class IncompleteWindowError(JambonzError):
    """The window could not be made complete within bounded attempts; names the shortfall."""
