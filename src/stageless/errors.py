"""One error hierarchy for the whole package.

Every error a user can cause is a :class:`UserError` (exit code 2); errors worth retrying
(a locked file, a network blip) are :class:`TransientError`; everything else is exit 1.
The CLI prints ``error: <message>`` and nothing more, so messages must be one line, say
what to do about the problem, and never contain a credential.
"""

from __future__ import annotations


class StagelessError(Exception):
    """Root of every error stageless raises on purpose."""

    exit_code = 1
    retryable = False

    def __init__(self, message: str) -> None:
        # One line, always: the CLI contract is a single `error: ...` line.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class UserError(StagelessError):
    """Bad input or configuration: the user can fix it (exit code 2)."""

    exit_code = 2


class NotFoundError(UserError):
    """A table, column, file or other named thing does not exist."""


class TransientError(StagelessError):
    """Probably works if tried again later (a lock, a timeout, a dropped connection)."""

    retryable = True


class DataError(StagelessError):
    """The data read contradicts the plan (for example the exactly-once check failed)."""


class WorkerFailed(StagelessError):
    """A training worker failed; carries the worker's own exit code and message."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def describe(exc: BaseException) -> str:
    """One line saying what an unexpected exception was, for an ``error:`` line.

    XGBoost's errors span many lines: a location header, then ``- [file:line]: what``
    lines from the outermost cause inwards; those "what" parts are the useful bit.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    causes = [line.split("]:", 1)[1].strip() for line in lines if line.startswith("- [")]
    causes = [c for c in causes if c]
    text = "; ".join(causes) if causes else (lines[0] if lines else "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
