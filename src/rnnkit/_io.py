"""File safety: atomic writes (readers see the old file or the complete new one, never a partial
one) and bounded reading of untrusted model files (every fault a ``ModelFileError``)."""
import contextlib
import json
import os
import re
import stat
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no flock; stale files are told apart by age alone
    fcntl = None


class ModelFileError(ValueError):
    """The file is not a readable model or weights file (truncated, corrupt, or something else)."""


def _default_mode():
    """The mode a plain ``open()`` would give a new file (mkstemp's is 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_TMP_TAG = ".rnnkit-"  # temporary files are named .NAME.rnnkit-<random>.tmp
_RANDOM = r"[a-z0-9_]{8}"  # what tempfile.mkstemp puts between prefix and suffix


@contextlib.contextmanager
def atomic_write(path, mode="wb", **open_kwargs):
    """Open a temporary file beside ``path``; when the block succeeds, fsync and rename it onto
    ``path``. If the block raises (or the process is interrupted), ``path`` is untouched and the
    temporary file is removed. A process killed outright (``kill -9``) leaves its temporary file
    behind: the next successful save to the same folder removes it (see ``remove_stale_temps``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{_TMP_TAG}", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            _lock(f.fileno(), blocking=True)  # held until the file is renamed: it marks a live save
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp, _default_mode())
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    remove_stale_temps(path.parent, path.name, started)


def _lock(fd, blocking):
    """An exclusive ``flock`` on ``fd`` (released when the process dies); True if taken. Where
    ``flock`` does not exist every file counts as unlocked."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


def remove_stale_temps(folder, name, before):
    """Remove the temporary files that saves killed outright left in ``folder``: only rnnkit's own
    (``.ANY.rnnkit-<random>.tmp``, and ``.NAME.<random>.tmp`` for the file just saved, the older
    naming), only those last written before ``before`` (the start of the running save) and not
    locked by a save still in progress. Failures are ignored: cleaning up never fails a save."""
    ours = re.compile(rf"\..+{re.escape(_TMP_TAG)}{_RANDOM}\.tmp")
    older = re.compile(rf"\.{re.escape(name)}\.{_RANDOM}\.tmp")
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not (ours.fullmatch(entry.name) or older.fullmatch(entry.name)):
                continue
            with contextlib.suppress(OSError):
                fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
                try:
                    info = os.fstat(fd)
                    if stat.S_ISREG(info.st_mode) and info.st_mtime < before and _lock(fd, blocking=False):
                        os.unlink(entry.path)
                finally:
                    os.close(fd)


def atomic_write_bytes(path, data):
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


# ----- reading untrusted files: bounded, and every fault a ModelFileError --------------------------
MAX_INFLATION = 20  # trained weights compress ~1.1:1; 20:1 above 1 MiB is a zip bomb, not a model
_SMALL = 1 << 20


def open_regular(path):
    """Open ``path`` for binary reading if it is a regular file (symlinks to one are fine).

    FIFOs, devices, directories and symlink loops are a ``ModelFileError`` at once: the file is
    opened non-blocking and checked with ``fstat`` before anything is read, so a FIFO cannot
    block. A missing path stays a ``FileNotFoundError``."""
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"No model file at '{path}'.") from None
    except OSError as exc:  # a directory on some systems, a symlink loop, no permission
        raise ModelFileError(f"'{path}' cannot be opened as a model file: {exc.strerror or exc}.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelFileError(f"'{path}' is not a regular file (a directory, FIFO or device); give the path of "
                             "a saved model file.")
    return os.fdopen(fd, "rb")


@contextlib.contextmanager
def open_zip(path, what):
    """A ``ZipFile`` over the regular file at ``path`` (closed with it), or a ``ModelFileError``
    saying it is not a zip archive (``what`` names the kind of file expected, for the message)."""
    with open_regular(path) as f:
        try:
            zf = zipfile.ZipFile(f)
        except Exception as exc:  # zipfile's parser raises BadZipFile, EOFError, NotImplementedError, ...
            raise ModelFileError(f"'{path}' is not a readable {what} (truncated or not a zip archive: "
                                 f"{exc}).") from None
        with zf:
            yield zf


def check_members(zf, path, allowed, required):
    """Refuse unknown, duplicated or missing members before anything is inflated."""
    infos = zf.infolist()
    names = [info.filename for info in infos]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ModelFileError(f"'{path}' has unexpected member(s) {', '.join(repr(n[:80]) for n in unknown[:5])}; "
                             f"a model file holds only {', '.join(allowed)}.")
    if len(names) != len(set(names)):
        raise ModelFileError(f"'{path}' lists a member twice: the archive is corrupt or crafted.")
    missing = [n for n in required if n not in names]
    if missing:
        raise ModelFileError(f"'{path}' lacks its {missing[0]} member: the file is damaged or not a model.")


def open_member(zf, name, path):
    """A stream over member ``name`` (stored or deflated, not encrypted), or a ``ModelFileError``."""
    info = zf.getinfo(name)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
        raise ModelFileError(f"'{path}': member {name} is encrypted or uses compression method "
                             f"{info.compress_type}; model files are stored or deflated.")
    try:
        return zf.open(info)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as exc:
        raise ModelFileError(f"'{path}': member {name} is corrupt ({exc}).") from None


def read_member(zf, name, path, limit=None):
    """The bytes of member ``name``, inflated only after its declared size passes two bounds:
    ``limit`` (bytes) and ``MAX_INFLATION`` times its compressed size (above 1 MiB). Checksums,
    truncation and bad compression are a ``ModelFileError``."""
    info = zf.getinfo(name)
    if limit is not None and info.file_size > limit:
        raise ModelFileError(f"'{path}': member {name} declares {info.file_size:,} bytes, more than the "
                             f"{limit:,} it can hold; the file is damaged or crafted.")
    if info.file_size > max(_SMALL, MAX_INFLATION * info.compress_size):
        raise ModelFileError(f"'{path}': member {name} would inflate {info.compress_size:,} bytes to "
                             f"{info.file_size:,} (more than {MAX_INFLATION}:1), which no saved model does; "
                             "refused as a zip bomb.")
    with open_member(zf, name, path) as member:
        try:
            data = member.read(info.file_size + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError,
                RuntimeError) as exc:
            raise ModelFileError(f"'{path}': member {name} is corrupt ({exc}).") from None
    if len(data) != info.file_size:
        raise ModelFileError(f"'{path}': member {name} inflates to {len(data):,} bytes, not the "
                             f"{info.file_size:,} it declares.")
    return data


def read_json(data, path, name):
    """Parse JSON text into a dict; nesting too deep for Python is an error, not a crash. (NaN and
    Infinity are read as Python does: rnnkit writes them for such values in metadata; the layers
    check their own arguments.)"""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"'{path}': {name} is not valid JSON ({str(exc)[:200]}).") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"'{path}': {name} must hold a JSON object, not {type(value).__name__}.")
    return value
