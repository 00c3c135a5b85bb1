"""Download an expert's GGUF files from the Hugging Face hub into the standard HF cache.

huggingface_hub 2.x resumes a broken transfer only inside one call: its temporary file is unique
to the process and deleted when the call fails, so a pull killed half-way would start again from
zero. We therefore fetch each file ourselves, with huggingface_hub's own `http_get` (Range
requests, retries, its tqdm bar), into `blobs/<etag>.incomplete` of the cache, a name that
survives the process; check its size; move it to `blobs/<etag>`; and let `hf_hub_download` link
it into `snapshots/`, finding the blob already there. The cache layout stays huggingface_hub's.

Bytes always come over plain HTTP from the address the hub redirects to, never through hf_xet.
A file already in the cache is returned without any request, and HF_HUB_OFFLINE is honoured.
This is the only module that downloads; locate.py only looks the cache up.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..catalog import Expert, HubSource, Quant
from ..diskerrors import DiskError, disk_error, disk_errors
from ..errors import DownloadError, LeerooError, NotAvailableOffline
from ..locate import LISTED_TOLERANCE, cached_path, shard_names
from ..units import format_size

Progress = bool | None | Callable[[int, int | None], None]

# What moves the Hugging Face cache to another disk (named in a full or read-only disk's error).
CACHE_SETTING = "HF_HUB_CACHE (or HF_HOME)"


@dataclass(frozen=True)
class _Remote:
    """One file as the hub's resolve endpoint announced it."""

    name: str
    location: str  # where the bytes are (the CDN address the hub redirects to)
    etag: str
    commit: str
    size: int | None


def pull(expert: Expert, quant: Quant, progress: Progress = True) -> Path:
    """Make every shard of this quantization present in the HF cache; the first shard's path.

    progress: True shows huggingface_hub's tqdm bar (stderr), False or None nothing, a callable
    is called as progress(bytes_done, bytes_total) across all shards (total None if unknown).
    Raises DownloadError (missing file, size mismatch, unreachable hub; a partial download is
    kept for the next pull to resume), NotAvailableOffline, or DiskError (a full or read-only
    cache; the partial download is deleted, since it is what fills the disk).
    """
    source = expert.source
    if not isinstance(source, HubSource):
        raise DownloadError(f"{expert.id} comes from {source.kind}, not the hub; "
                            "use leeroo_local.provision.ensure.ensure_local to prepare it")
    found = cached_path(source, quant)
    if found is not None:
        return found
    what = f"{expert.id} {quant.type}"
    if _offline():
        raise NotAvailableOffline(
            f"{what} ({source.repo}/{quant.file}) is not in the Hugging Face cache and "
            f"HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE and run `leeroo-local pull {expert.id} "
            f"--quant {quant.type}` while online, or copy the cache folder from a machine that has it")

    with disk_errors(setting=CACHE_SETTING):
        _download(source, quant, what, progress)
    found = cached_path(source, quant)
    if found is None:
        raise DownloadError(f"{source.repo} changed while {what} was downloading (its shards "
                            "now belong to different commits); run the pull again")
    return found


def _download(source: HubSource, quant: Quant, what: str, progress: Progress) -> None:
    """Ask the hub about every shard not cached, check sizes, fetch into blobs/, link them."""
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import silent_tqdm

    endpoint = _endpoint()
    storage = Path(constants.HF_HUB_CACHE) / ("models--" + source.repo.replace("/", "--"))
    names = shard_names(quant.file)
    hits = [try_to_load_from_cache(source.repo, n, revision=source.revision) for n in names]
    cached = sum(Path(h).stat().st_size for h in hits if isinstance(h, str))
    remote = [_head(source, n, endpoint) for n, h in zip(names, hits) if not isinstance(h, str)]
    announced = None if any(r.size is None for r in remote) else cached + sum(r.size for r in remote)
    if announced is not None:
        _check_catalog_size(what, quant, announced, "the hub announces")
    _check_disk(storage, remote)

    report = _Report(progress, announced, cached) if callable(progress) else None
    tqdm_class = report.bar if report else (None if progress is True else silent_tqdm)
    blobs, fresh = [], []
    for r in remote:
        blob, new = _fetch(source, r, storage, endpoint, tqdm_class)
        blobs.append(blob)
        fresh += [blob] if new else []
        if report:
            report.finish(blob.stat().st_size)
    try:
        _check_catalog_size(what, quant, cached + sum(b.stat().st_size for b in blobs),
                            "the download holds")
    except DownloadError:
        for blob in fresh:  # a retry must start clean, not trust these bytes
            blob.unlink(missing_ok=True)
        raise
    for r in remote:
        _link(source, r.name, endpoint)


def _offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub read it at import, or as it is set now."""
    from huggingface_hub import constants

    now = os.environ.get("HF_HUB_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES
    return constants.is_offline_mode() or now


def _endpoint() -> str:
    """HF_ENDPOINT read now (huggingface_hub reads it once, at import, into constants.ENDPOINT)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _agent() -> dict[str, str]:
    """How we introduce ourselves to the hub (in the user agent) through huggingface_hub."""
    from .. import __version__

    return {"library_name": "leeroo-local", "library_version": __version__}


def _head(source: HubSource, name: str, endpoint: str) -> _Remote:
    """Ask the resolve endpoint where the file is, its etag and its size."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(source.repo, name, revision=source.revision, endpoint=endpoint)
    with _translated(source, name, endpoint):
        meta = get_hf_file_metadata(url, endpoint=endpoint, **_agent())
    if not meta.commit_hash or not meta.etag:
        raise DownloadError(f"{endpoint} answered for {source.repo}/{name} without the "
                            "X-Repo-Commit and ETag headers of a Hugging Face hub; check HF_ENDPOINT "
                            "and any proxy in between")
    return _Remote(name, meta.location, meta.etag, meta.commit_hash, meta.size)


def _fetch(source: HubSource, r: _Remote, storage: Path, endpoint: str,
           tqdm_class) -> tuple[Path, bool]:
    """Download, or finish downloading, one file to blobs/<etag>; (its path, whether it is new)."""
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import WeakFileLock, build_hf_headers

    blob, partial = storage / "blobs" / r.etag, storage / "blobs" / f"{r.etag}.incomplete"
    lock = storage.parent / ".locks" / storage.name / f"{r.etag}.lock"  # huggingface_hub's own
    lock.parent.mkdir(parents=True, exist_ok=True)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):
        if blob.exists():  # e.g. the same file under another revision
            return blob, False
        start = partial.stat().st_size if partial.exists() else 0
        if r.size is not None and start > r.size:
            partial.unlink()
            start = 0
        headers = build_hf_headers(**_agent())  # with the token, if the user logged in
        if _origin(r.location) != _origin(endpoint):
            headers.pop("authorization", None)  # the token stays on the hub, not the CDN
        with _translated(source, r.name, endpoint, partial), partial.open("ab") as fh:
            try:
                # a Range request from `start`; raises if the byte count differs from expected_size
                http_get(r.location, fh, resume_size=start, headers=headers, expected_size=r.size,
                         displayed_filename=r.name, tqdm_class=tqdm_class)
            except OSError:
                fh.close()
                if r.size is not None and partial.stat().st_size > r.size:
                    partial.unlink()
                    raise DownloadError(
                        f"the server sent more than the {r.size:,} bytes it announced for "
                        f"{source.repo}/{r.name}; the file was deleted, so the next pull starts "
                        "over") from None
                raise
        os.replace(partial, blob)
    return blob, True


def _link(source: HubSource, name: str, endpoint: str) -> None:
    """Let huggingface_hub link the finished blob into snapshots/ and record the ref."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import silent_tqdm

    with _translated(source, name, endpoint):
        hf_hub_download(source.repo, name, revision=source.revision, endpoint=endpoint,
                        tqdm_class=silent_tqdm, **_agent())


@contextmanager
def _translated(source: HubSource, name: str, endpoint: str,
                partial: Path | None = None) -> Iterator[None]:
    """huggingface_hub's and httpx's exceptions as DownloadError messages a user can act on; a
    full or read-only disk as DiskError, with the partial download deleted (a network error
    keeps it, for the next pull to resume)."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError, HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError,
        RevisionNotFoundError)

    repo, rev = source.repo, source.revision
    try:
        yield
    except LeerooError:
        raise
    except (HfHubHTTPError, httpx2.HTTPError, OSError) as exc:
        disk = disk_error(exc, partial, CACHE_SETTING) if isinstance(exc, OSError) else None
        if disk is not None:
            if partial is not None:  # what fills the disk: resuming it would fill it again
                partial.unlink(missing_ok=True)
            raise disk from exc
        kept = ""
        if partial is not None and partial.exists() and partial.stat().st_size:
            kept = (f"; the {format_size(partial.stat().st_size)} received are kept and the next "
                    "pull resumes from there")
        if isinstance(exc, RemoteEntryNotFoundError):
            msg = (f"{repo} has no file {name} at revision {rev}; the catalog entry may be out "
                   f"of date (see https://huggingface.co/{repo}/tree/{rev})")
        elif isinstance(exc, GatedRepoError):
            msg = (f"{repo} is gated: accept its terms on https://huggingface.co/{repo} and log "
                   "in (`hf auth login` or HF_TOKEN)")
        elif isinstance(exc, RepositoryNotFoundError):
            msg = (f"repository {repo} was not found at {endpoint} (if it is private, log in "
                   "with `hf auth login` or set HF_TOKEN)")
        elif isinstance(exc, RevisionNotFoundError):
            msg = f"{repo} has no revision {rev!r}"
        elif isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else "an error"
            msg = f"the hub answered {status} for {repo}/{name}{kept}; try again later"
        elif isinstance(exc, httpx2.HTTPError):
            msg = (f"could not download {repo}/{name} from {endpoint} "
                   f"({type(exc).__name__}: {exc}){kept}; check the connection (or HF_ENDPOINT) "
                   "and run the pull again")
        else:
            msg = f"could not download {repo}/{name}: {exc}{kept}"
        raise DownloadError(msg) from exc


def _check_catalog_size(what: str, quant: Quant, total: int, who: str) -> None:
    """Compare with the catalog: exact sizes must match, listed ones within LISTED_TOLERANCE."""
    expected = quant.size_bytes
    if quant.size_basis == "exact" and total != expected:
        raise DownloadError(f"{who} {total:,} bytes for {what} but the catalog says exactly "
                            f"{expected:,}; the repository may have changed: fix the catalog entry "
                            "or pick another quantization")
    if quant.size_basis == "listed" and abs(total - expected) > LISTED_TOLERANCE * expected:
        raise DownloadError(f"{who} {format_size(total, binary=False)} for {what} but the hub "
                            f"listing in the catalog says about {format_size(expected, binary=False)}; "
                            "the file is not the one the catalog describes")


def _check_disk(storage: Path, remote: list[_Remote]) -> None:
    """Fail before downloading rather than fill the disk half-way."""
    need = 0
    for r in remote:
        blob, partial = storage / "blobs" / r.etag, storage / "blobs" / f"{r.etag}.incomplete"
        if r.size and not blob.exists():
            need += r.size - (partial.stat().st_size if partial.exists() else 0)
    probe = storage
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need > free:
        raise DiskError(f"the download needs {format_size(need)} but {probe} has only "
                        f"{format_size(free)} free: free space there or set {CACHE_SETTING} to "
                        "a folder on another disk", probe, errno.ENOSPC)


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


class _Report:
    """Stands in for tqdm: turns per-file byte counts into one progress(done, total) call."""

    def __init__(self, fn: Callable[[int, int | None], None], total: int | None, done: int):
        self.fn, self.total, self.base, self.current = fn, total, done, 0

    def bar(self, *args, initial: int = 0, **kwargs) -> _Report:
        """Called by huggingface_hub as its tqdm class, once per file (initial: bytes resumed)."""
        self.current = initial
        self.fn(self.base + self.current, self.total)
        return self

    def update(self, n: int | float | None = 1) -> None:
        self.current += int(n or 0)
        self.fn(self.base + self.current, self.total)

    def finish(self, size: int) -> None:
        self.base, self.current = self.base + size, 0
        self.fn(self.base, self.total)

    def __enter__(self) -> _Report:
        return self

    def __exit__(self, *exc) -> None:
        return None
