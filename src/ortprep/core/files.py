"""Atomic output files: written under a temporary name in the target folder, then renamed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ortprep.core.errors import OutputError, UsageError


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds.

    The temporary name hides the real suffix, so writers that pick a format from the extension
    (ORT does) must be told the format explicitly.
    """
    if target.exists() and not target.is_file():
        # a rename would put a regular file in place of a device (/dev/null), a pipe, a folder
        raise OutputError(
            f"{target}: not a regular file (a device, pipe or folder); ortprep does not write "
            "over it",
            "pass the name of a file to write",
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=temp_prefix(target), suffix=TEMP_SUFFIX, dir=target.parent
        )
        os.close(fd)
    except OSError as exc:
        raise OutputError.writing(target, exc) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; an output file should get the usual permissions (umask)
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
        remove_stale_temps(target)
    except OSError as exc:  # the block's own writes included: a full disk is not a bug
        raise OutputError.writing(target, exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.tmp")


def temp_prefix(target: Path) -> str:
    """The prefix of the temporary files and folders written beside ``target``:
    ``.NAME.PID.`` (then Python's 8 random characters and ``.tmp``). The process id says whose
    a temporary is, so a later run can tell a killed run's leftovers from a live run's work."""
    return f".{target.name}.{os.getpid()}."


def remove_stale_temps(target: Path) -> None:
    """Remove what a killed run left beside ``target``: ortprep's own temporaries for this very
    name (:func:`temp_prefix`) whose process is gone. Nothing else in the folder is touched."""
    import shutil

    prefix = f".{target.name}."
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or match["name"] != target.name or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or no process could have that id
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    write_bytes(target, text.encode("utf-8"))


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- output paths
# Checked before any work, so a bad -o costs nothing and leaves nothing behind.


def check_output_folder(out: Path, inputs: Iterable[Path] = (), option: str = "-o") -> None:
    """``out`` can be (or become) a folder ortprep writes into; raises :class:`UsageError`.

    Refused: an existing file or device (``/dev/null``), a path below a file, a folder that
    cannot be written, and an input itself (outputs never go over or into their inputs' place).
    Nothing is created here.
    """
    _check_not_input(out, inputs, "folder", option)
    if out.exists() and not out.is_dir():
        raise UsageError(
            f"{option} {out}: is a file, not a folder", "pass a folder (it is created if missing)"
        )
    _check_writable(out, option)


def check_output_file(out: Path, inputs: Iterable[Path] = (), option: str = "-o") -> None:
    """``out`` can be written as a file (atomically: a temporary file beside it, then a
    rename); raises :class:`UsageError` for a folder, a device, a path below a file, an input,
    or a folder that cannot be written."""
    _check_not_input(out, inputs, "file", option)
    if out.is_dir():
        raise UsageError(f"{option} {out}: is a folder, expected a file name")
    if out.exists() and not out.is_file():
        raise UsageError(
            f"{option} {out}: is not a regular file (a device or a pipe)",
            "pass the name of a file to write",
        )
    _check_writable(out.parent, option, out)


def _check_not_input(out: Path, inputs: Iterable[Path], kind: str, option: str) -> None:
    target = _resolved(out)
    for p in inputs:
        if _resolved(p) == target:
            raise UsageError(
                f"{option} {out}: is one of the inputs", f"pass another {kind} for the outputs"
            )


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p.absolute()


def _check_writable(folder: Path, option: str, named: Path | None = None) -> None:
    """The nearest existing ancestor of ``folder`` must be a writable folder."""
    probe = folder.absolute()
    while True:
        try:
            exists = probe.exists()
        except OSError as exc:  # a name over the OS's limits
            raise UsageError(f"{option} {named or folder}: {exc.strerror or exc}") from None
        if exists:
            break
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(
            f"{option} {named or folder}: {probe} is a file, so nothing can be written below it",
            "pass a path whose parent folders are folders",
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(
            f"{option} {named or folder}: the folder {probe} is not writable",
            "pass a folder you can write to",
        )


@contextlib.contextmanager
def output_folder(out: Path) -> Iterator[Path]:
    """Run a command that writes below ``out``; if ``out`` did not exist before, the folders the
    command made and left empty (a model that failed, a run that wrote nothing) are removed at
    the end, ``out`` included: a failed run leaves no empty ``-o`` behind."""
    existed = out.exists()
    try:
        yield out
    finally:
        if not existed and out.is_dir():
            _remove_empty_folders(out)


def _remove_empty_folders(top: Path) -> None:
    for folder, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
        with contextlib.suppress(OSError):  # not empty, or gone: keep going
            os.rmdir(folder)
