"""What the RecentCalls client raises; every message names the scope and the base URL.

JambonzUnavailableError and IncompleteWindowError may pass by themselves (the Dagster layer tries
the step again); the others need a person. A message must never carry the API key, a request
header or an environment dump.
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


class JambonzUnreachableError(JambonzUnavailableError):
    """No answer at all from the base URL since the client was made: every attempt of its first
    request was refused, unresolvable, unroutable or not accepted in time. A typo in the URL
    looks like this; so does a jambonz that is down (the caller tells them apart by history).
    `tried`: what was tried, without the URL (e.g. "3 attempts in 3.5 s; last: ConnectError:
    [Errno 111] Connection refused")."""

    def __init__(self, message: str, tried: str) -> None:
        super().__init__(message)
        self.tried = tried


class IncompleteWindowError(JambonzError):
    """The window could not be made complete within bounded attempts; names the shortfall."""
