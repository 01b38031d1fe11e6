"""One exception hierarchy for jupyter-envs, and its HTTP status map.

The core raises these; handlers turn them into HTTP errors through :func:`http_status`,
the only place where an error kind meets a status code.
"""

from __future__ import annotations


class EnvsError(Exception):
    """Base of every error jupyter-envs raises on purpose. ``str(exc)`` is user-facing."""


class InvalidRequest(EnvsError):
    """The input is malformed: a bad name, spec, file, path or option. Nothing ran."""


class NotFound(EnvsError):
    """No such environment, task, revision or package."""


class Forbidden(EnvsError):
    """The request is understood but not allowed (protected environment, outside allowed dirs)."""


class ReadOnly(Forbidden):
    """The extension runs read-only: no change is allowed."""


class Conflict(EnvsError):
    """The request collides with the current state (the environment exists, is busy, ...)."""


class NoFreeGpu(Conflict):
    """A kernel asked for GPUs held exclusively by other kernels (or absent); says which."""


class SolveError(EnvsError):
    """The requested specs cannot be satisfied; the message names the conflict."""


class BackendError(EnvsError):
    """The engine (py-rattler or a conda CLI) failed while doing the work."""


class Cancelled(EnvsError):
    """The operation was cancelled; the environment was left consistent."""


_STATUS: tuple[tuple[type[EnvsError], int], ...] = (
    (InvalidRequest, 400),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (SolveError, 422),
    (Cancelled, 409),
    (BackendError, 500),
)


def http_status(exc: EnvsError) -> int:
    """The HTTP status code for ``exc`` (500 for an unknown kind)."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500
