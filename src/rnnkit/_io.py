"""Atomic file writes: readers see the old file or the complete new one, never a partial one."""
import contextlib
import os
import tempfile
from pathlib import Path


class ModelFileError(ValueError):
    """The file is not a readable model or weights file (truncated, corrupt, or something else)."""


def _default_mode():
    """The mode a plain ``open()`` would give a new file (mkstemp's is 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path, mode="wb", **open_kwargs):
    """Open a temporary file beside ``path``; when the block succeeds, fsync and rename it onto
    ``path``. If the block raises (or the process is interrupted), ``path`` is untouched and the
    temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data):
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path
