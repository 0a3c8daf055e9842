"""Where RecGym keeps files, and how it writes them: atomically, so nothing is half-written.

No module writes a result file except through these helpers.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

from simulators.core.errors import ConfigError

CACHE_ENV = "RECGYM_CACHE"

T = TypeVar("T")


def cache_root() -> Path:
    """``$RECGYM_CACHE`` (default ``~/.cache/recgym``), created; one :class:`ConfigError` naming the
    variable when it is a file or a folder that cannot be written (tried, not trusted)."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "recgym").expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"${CACHE_ENV} {root}: cannot be the cache folder ({err.strerror or err})"
        ) from None
    problem = _trial_write(root)
    if problem:
        raise ConfigError(f"${CACHE_ENV} {root}: cannot write in the cache folder ({problem})")
    return root


def cache_dir(*parts: str) -> Path:
    """``$RECGYM_CACHE`` joined with ``parts``, created. A part that is a file (a cache entry
    replaced by one) is reported in one line and removed, then the folder is made."""
    root = cache_root()
    path = root.joinpath(*parts)
    for folder in [*reversed(path.parents), path]:
        if root in folder.parents and folder.exists() and not folder.is_dir():
            report_rebuild("cache folder", folder, "a file stands where a folder belongs")
            folder.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    A crash or error half-way leaves whatever was at ``path`` untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def claim_folder(folder: Path, busy: str) -> IO[str]:
    """Lock ``folder`` for this process (``flock`` on ``folder/.lock``: the kernel frees it when the
    process dies) and return the handle to keep; :class:`ConfigError` ``busy`` when another holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = (folder / ".lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(busy) from None
    return handle


def release_folder(handle: IO[str]) -> None:
    """Give back a folder :func:`claim_folder` locked."""
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _trial_write(folder: Path) -> str | None:
    """Try writing in ``folder``: create and remove a temporary file there (a permission check
    says yes as root where writing then fails: ``/proc``, read-only mounts). ``None`` when it
    worked, else what the system said."""
    try:
        fd, name = tempfile.mkstemp(prefix=".recgym-write-test.", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        return err.strerror or str(err)
    return None


def _check_writable_under(target: Path, start: Path, flag: str) -> None:
    """The nearest existing folder at or above ``start`` must be a folder a file can be written in
    (tried, not trusted)."""
    existing = _nearest_existing(start)
    if not existing.is_dir():
        raise ConfigError(f"{flag} {target}: {existing} is a file, not a folder")
    problem = _trial_write(existing)
    if problem:
        raise ConfigError(f"{flag} {target}: cannot write in {existing} ({problem})")


def _refuse_inputs(target: Path, flag: str, inputs: Iterable[Path]) -> None:
    """Refuse an output that would replace one of the command's inputs (a file it reads, or a
    file that makes up an input run, model or log folder)."""
    resolved = target.resolve()
    for path in inputs:
        if Path(path).resolve() == resolved:
            raise ConfigError(
                f"{flag} {target}: that file is one of the command's inputs ({path}); write the output elsewhere"
            )


def check_output_file(
    path: str | os.PathLike[str], flag: str, inputs: Iterable[Path] = (), beside: Sequence[str] = ()
) -> Path:
    """``path`` as a file a command can write when its work is done, checked *before* the work:
    not a folder, not one of ``inputs`` (the files that make up what the command reads: see
    :func:`input_files`), under a folder (or a path of folders still to be made) where a file can
    be written; ``beside``: suffixes of the files written next to it (``.md``, ``.png``), checked
    alike. Raises :class:`ConfigError` naming ``flag`` otherwise. Creates nothing that stays."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{flag} {target}: is a folder, expected a file path")
    protected = list(inputs)
    for output in [target, *(target.with_suffix(suffix) for suffix in beside)]:
        _refuse_inputs(output, flag, protected)
        if output.exists() and output.is_dir():
            raise ConfigError(f"{flag} {target}: {output} is a folder where a file is due")
    _check_writable_under(target, target.parent, flag)
    if target.exists() and not os.access(target, os.W_OK):
        raise ConfigError(f"{flag} {target}: the file exists and cannot be written")
    return target


def check_output_folder(
    path: str | os.PathLike[str], flag: str, inputs: Iterable[Path] = (), writes: Sequence[str] = ()
) -> Path:
    """``path`` as a folder a command can write into (existing or to be made), checked before the
    work: not a file, none of the files it ``writes`` there (names, relative) one of ``inputs``,
    and a file can be written in it; raises :class:`ConfigError` naming ``flag`` otherwise.
    Creates nothing that stays."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{flag} {target}: is a file, expected a folder")
    protected = list(inputs)
    for name in writes:
        _refuse_inputs(target / name, flag, protected)
    _check_writable_under(target, target, flag)
    return target


def input_files(*paths: str | os.PathLike[str] | None, skip: Sequence[str] = ()) -> list[Path]:
    """Every existing file that makes up the inputs ``paths``: a file itself, or every file under
    a folder (hidden ones and those under the folder names in ``skip`` left out): what an output
    must never replace."""
    found: list[Path] = []
    for path in paths:
        if path is None or str(path) == "":
            continue
        where = Path(path)
        if where.is_file():
            found.append(where)
        elif where.is_dir():
            for file in where.rglob("*"):
                relative = file.relative_to(where).parts
                if file.is_file() and not relative[0].startswith(".") and relative[0] not in skip:
                    found.append(file)
    return found


MANIFEST_VERSION = 1
"""Bump when the manifest format changes."""
MANIFEST = "manifest.json"
"""A cache folder's manifest: the sha256 of each of its files, written last."""


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(manifest: Path, files: Sequence[Path]) -> None:
    """Record the sha256 of each file of a complete cache entry in ``manifest`` (written last,
    atomically: an entry without its manifest is unfinished)."""
    record = {
        "format": MANIFEST_VERSION,
        "files": {str(f.relative_to(manifest.parent)): file_digest(f) for f in files},
    }
    write_text_atomic(manifest, json.dumps(record, indent=1, sort_keys=True) + "\n")


def cache_entry_problem(manifest: Path) -> str | None:
    """``None`` when every file ``manifest`` lists holds the bytes it recorded; else what is wrong,
    in a few words (a missing manifest or file, a changed or unreadable file)."""
    try:
        record = json.loads(manifest.read_text())
        files = record["files"]
        if record.get("format") != MANIFEST_VERSION or not isinstance(files, dict):
            return "its manifest is of another format"
    except FileNotFoundError:
        return "no manifest (unfinished, or written by an older version)"
    except (OSError, ValueError, KeyError, TypeError):
        return "its manifest is unreadable"
    for name, expected in files.items():
        path = manifest.parent / name
        try:
            if file_digest(path) != expected:
                return f"{name} changed since it was written"
        except OSError:
            return f"{name} is missing or unreadable"
    return None


def report_rebuild(what: str, where: Path, problem: str) -> None:
    """Say, in one line on stderr, that a cached artefact is rebuilt and why."""
    print(f"warning: rebuilding the cached {what} in {where}: {problem}", file=sys.stderr)


def content_key(*parts: object) -> str:
    """A cache key: the first 16 hex digits of the sha256 of ``parts`` as canonical JSON (keys
    sorted, anything not JSON by its ``str``). Every cache names its entries by one: a version,
    the data's fingerprint (``LoggedData.fingerprint``) and the options the entry depends on."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


STALE_ENTRY_ERRORS = (OSError, ValueError, KeyError, TypeError)
"""What a cache entry's ``load`` may raise for an entry it cannot use (``DataError`` and
``ConfigError`` are ``ValueError`` subclasses): the entry is then reported and rebuilt."""


def load_or_build(
    what: str, manifest: Path, files: Sequence[Path], load: Callable[[], T], build: Callable[[], T]
) -> T:
    """A cache entry: ``load()`` when ``manifest`` vouches for the bytes of every file it lists,
    else ``build()`` (which writes ``files``), then a new manifest over ``files``, written last.

    An entry that is there but cannot be used (unfinished, a file changed or missing, or ``load``
    raising one of :data:`STALE_ENTRY_ERRORS`, whose message says why) is reported in one line
    (:func:`report_rebuild`) and built again; an absent entry is built without a word. The one
    load-or-build sequence of every cache (the shop, fitted simulators, CTR models, candidates,
    tuned re-rankers).

    The check and the build hold an exclusive lock on the entry (``flock`` on ``<manifest>.lock``),
    so processes that ask for one entry at once (Ray trials, parallel test workers, two commands)
    build it once: the others wait, then load what the first wrote."""
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with manifest.with_name(manifest.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the kernel frees it if this process dies
        try:
            return _load_or_build(what, manifest, files, load, build)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load_or_build(
    what: str, manifest: Path, files: Sequence[Path], load: Callable[[], T], build: Callable[[], T]
) -> T:
    if manifest.exists() or any(path.exists() for path in files):
        problem = cache_entry_problem(manifest)
        if problem is None:
            try:
                return load()
            except STALE_ENTRY_ERRORS as err:
                problem = str(err) or type(err).__name__
        report_rebuild(what, manifest.parent if manifest.name == MANIFEST else files[0], problem)
    value = build()
    write_manifest(manifest, files)
    return value


def manifest_beside(file: Path) -> Path:
    """The manifest of a one-file cache entry (``abc.npz`` -> ``abc.manifest.json``)."""
    return file.with_name(f"{file.stem}.manifest.json")
