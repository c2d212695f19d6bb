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


class OutputError(OrtprepError):
    """An output file could not be written: the disk is full, the folder read-only, and so on.
    Nothing is left half-written (outputs are renamed into place only once complete)."""

    @classmethod
    def writing(cls, target: object, exc: OSError) -> OutputError:
        import errno

        hint = {
            errno.ENOSPC: "free some disk space (or pass another -o) and run again",
            errno.EDQUOT: "free some disk space (or pass another -o) and run again",
            errno.EROFS: "pass an -o on a writable file system",
            errno.EACCES: "pass an -o you can write to",
            errno.EPERM: "pass an -o you can write to",
        }.get(exc.errno or 0, "check the output folder")
        return cls(f"{target}: cannot write the file ({exc.strerror or exc})", hint)
