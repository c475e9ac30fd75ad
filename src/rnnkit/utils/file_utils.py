"""``get_file``: fetch a file once into the rnnkit cache, as ``keras.utils.get_file`` does."""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from .._io import atomic_write
from ..datasets._cache import DownloadError

__all__ = ["get_file"]

_CHUNK = 1 << 20


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """Copy ``origin`` into the cache once and return the cached path, as Keras's ``get_file``.

    The file lands at ``cache_dir/cache_subdir/fname``; ``cache_dir`` defaults to rnnkit's cache
    (``$RNNKIT_HOME``, else ``~/.cache/rnnkit``) where Keras uses ``~/.keras``. A later call
    finds it there and fetches nothing (unless its hash no longer matches ``file_hash``, or
    ``force_download``). Files enter the cache complete or not at all.

    Args:
        fname: the cached file's name (default: the last part of ``origin``). With
            ``extract``, a name without an extension names the extraction folder.
        origin: where to get the file: an ``http(s)://``, ``ftp://`` or ``file://`` URL, or a
            local path (e.g. a copy downloaded by hand).
        untar: old spelling of ``extract=True, archive_format="tar"``.
        md5_hash: old spelling of ``file_hash`` for an MD5 hash.
        file_hash: the expected SHA-256 (64 hex digits) or MD5 of the file; checked after the
            download, and a cached copy that does not match is fetched again.
        cache_subdir: the sub-folder of ``cache_dir`` (an absolute path is used as it is).
        hash_algorithm: ``"auto"`` (by the hash's length), ``"sha256"`` or ``"md5"``.
        extract: unpack a ``.tar(.gz/.bz2/.xz)`` or ``.zip`` archive and return the folder.
        archive_format: ``"auto"`` (tar, then zip), ``"tar"``, ``"zip"`` or None.
        cache_dir: the cache's root folder.
        force_download: fetch again even if the file is cached.

    Returns:
        The path of the cached file (a ``str``), or of the extraction folder with ``extract``.

    Raises:
        rnnkit.datasets.DownloadError: in one line, when the file cannot be fetched, with how to
            pass a local copy instead.

        path = get_file("imdb.tar.gz", origin="file:///data/aclImdb_v1.tar.gz", extract=True)
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL or path of the file to get).')
    origin = os.fspath(origin)
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    root = Path(os.path.expanduser(cache_dir)) if cache_dir is not None else _default_cache_root()
    if not os.access(root if root.exists() else root.parent, os.W_OK):
        root = Path(tempfile.gettempdir(), ".rnnkit")
    datadir = root / cache_subdir
    datadir.mkdir(parents=True, exist_ok=True)

    given_name = os.fspath(fname) if fname is not None else None
    if not given_name:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(f"Can't parse the file name from origin '{origin}'; pass fname=.")
    else:
        fname = given_name
        if os.sep in fname:
            raise ValueError(f"fname must be a file name, not a path (use cache_dir= for the folder). "
                             f"Received: fname={fname}")
    if extract or untar:  # Keras's names for the archive and its folder
        if given_name and "." in fname:
            target = datadir / fname
            extraction_dir = datadir / f"{fname[:fname.find('.')]}_extracted"
        else:
            extraction_dir = datadir / fname
            target = datadir / f"{fname}_archive"
    else:
        target = datadir / fname

    fetch = force_download or not target.exists()
    if not fetch and file_hash is not None and not validate_file(target, file_hash, hash_algorithm):
        print(f"A local file was found, but it seems to be incomplete or outdated because the "
              f"{_algorithm(hash_algorithm, file_hash)} file hash does not match the original value of "
              f"{file_hash} so we will re-download the data.")
        fetch = True
    if fetch:
        print(f"Downloading data from {origin}")
        _fetch(origin, target)
        if file_hash is not None and not validate_file(target, file_hash, hash_algorithm):
            target.unlink()
            raise ValueError(f"Incomplete or corrupted file detected. The {_algorithm(hash_algorithm, file_hash)} "
                             f"file hash does not match the provided value of {file_hash}.")
    if extract or untar:
        if fetch or not extraction_dir.exists():
            if not _extract(target, extraction_dir, "tar" if untar else archive_format):
                raise ValueError(f"Could not extract {target}: it is not a {archive_format} archive.")
        return str(extraction_dir)
    return str(target)


def _default_cache_root():
    return Path(os.environ.get("RNNKIT_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "rnnkit"))


def _fetch(origin, target):
    """Copy ``origin`` (URL or local path) to ``target`` atomically; DownloadError in one line."""
    scheme = urllib.parse.urlsplit(origin).scheme
    try:
        if len(scheme) <= 1:  # a plain path (or a Windows drive letter)
            source = open(origin, "rb")
        else:
            request = urllib.request.Request(origin, headers={"User-Agent": "rnnkit"})
            source = urllib.request.urlopen(request, timeout=60)
        with source, atomic_write(target) as out:
            shutil.copyfileobj(source, out, _CHUNK)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise DownloadError(f"Could not download {origin} ({reason}). Get the file another way and pass its "
                            f"path as origin= (a local path or file:// URL), or put it at {target}.") from None


def _algorithm(hash_algorithm, file_hash):
    if hash_algorithm == "auto":
        return "sha256" if len(str(file_hash)) == 64 else "md5"
    if hash_algorithm not in ("sha256", "md5"):
        raise ValueError(f"hash_algorithm must be 'auto', 'sha256' or 'md5', got {hash_algorithm!r}.")
    return hash_algorithm


def hash_file(fpath, algorithm="sha256", chunk_size=_CHUNK):
    """The hex SHA-256 (or, with ``algorithm="md5"``, MD5) of the file at ``fpath``.

        hash_file("data.csv")     # 'e3b0c442...'
    """
    hasher = hashlib.md5() if algorithm == "md5" else hashlib.sha256()
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=_CHUNK):
    """Whether the file at ``fpath`` has hash ``file_hash`` (``"auto"``: SHA-256 for 64 hex digits,
    else MD5)."""
    return hash_file(fpath, _algorithm(algorithm, file_hash), chunk_size) == str(file_hash).lower()


def _extract(archive, folder, archive_format):
    """Unpack ``archive`` into ``folder`` (members may not escape it); False if no format matches."""
    if archive_format is None:
        return False
    formats = ["tar", "zip"] if archive_format == "auto" else (
        [archive_format] if isinstance(archive_format, str) else list(archive_format))
    for kind in formats:
        if kind == "tar" and tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                _unpack(folder, lambda tmp: tar.extractall(tmp, filter="data"))
            return True
        if kind == "zip" and zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    if os.path.isabs(name) or ".." in Path(name).parts:
                        raise ValueError(f"{archive} holds an unsafe path {name!r}; not extracting it.")
                _unpack(folder, zf.extractall)
            return True
        if kind not in ("tar", "zip"):
            raise ValueError(f"archive_format must be 'auto', 'tar', 'zip' or None, got {kind!r}.")
    return False


def _unpack(folder, extract_into):
    """Extract into a temporary folder beside ``folder``, then move it into place."""
    folder = Path(folder)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        extract_into(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
