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


class VerdictError(OrtprepError):
    """The model is fine, but the answer for it is no (the ORT format cannot hold a model this
    big): exit 1, as for any failed verdict, even when it is the only input."""

    exit_code = 1


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


_UNKNOWN_OP = (
    "is not a registered function/op",
    "no op registered for",
    "could not find an implementation for",
    "no opset import for domain",
    "unrecognized attribute",  # a custom op's schema is not there either
)
_DISK = ("no space left", "disk quota", "read-only file system", "permission denied")
_EXTERNAL = ("external data", "external initializer", "externaldata", "external_data")


def ort_failure_hint(message: str, default: str = "check the model with `ortprep inspect`") -> str:
    """The hint for ONNX Runtime refusing a model, from what ORT said: a custom op library only
    when ORT names an operator or domain it does not know, the disk when a write failed, the
    data files for external data. One place, so no command suggests a custom op library after a
    full disk."""
    text = message.lower()
    if any(s in text for s in _DISK):
        return "check the output folder: free disk space, or pass an -o you can write to"
    if any(s in text for s in _EXTERNAL):
        return "check the external data files beside the model (names, sizes, permissions)"
    if any(s in text for s in _UNKNOWN_OP):
        return (
            "the model uses an operator this onnxruntime does not have: for custom ops pass "
            "--custom-op-library LIB, else use a newer onnxruntime"
        )
    return default


def environment_error(exc: BaseException) -> OrtprepError | None:
    """The :class:`OrtprepError` an operating-system error stands for when the environment, not
    ortprep, caused it (a path over the OS's limits or in a symlink loop, no permission, a full
    or read-only disk, an I/O error), naming the path; None for any other error (a bug)."""
    import errno

    if not isinstance(exc, OSError) or exc.errno not in {
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.EACCES,
        errno.EPERM,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EIO,
        errno.ENXIO,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EMFILE,
        errno.ENFILE,
    }:
        return None
    where = f"{exc.filename}: " if exc.filename is not None else ""
    return OrtprepError(
        f"{where}{exc.strerror or exc}", "check the path, its permissions and the free disk space"
    )
