"""The one error family ortprep raises for problems its user caused."""

from __future__ import annotations


class OrtprepError(Exception):
    """A problem with the user's input or environment, explained in one line plus a hint.

    The CLI prints ``error: <message>`` and the hint, and exits with :attr:`exit_code` (2).
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class BadModelError(OrtprepError):
    """The model file is missing, corrupt, truncated, not a model, or refers to missing data."""


class UsageError(OrtprepError):
    """Options that do not make sense together, or values out of range."""
