"""Look at a hub repository before downloading anything: its GGUF files with exact sizes, and
one file's header read with HTTP range requests.

`fit` needs an expert's architecture facts and file sizes to place it; both are available
without the weights. The tree listing (`list_repo_tree`, `/api/models/{repo}/tree/{rev}`) gives
every file's exact byte count (the LFS size) and sha256; the header of a GGUF is its first
megabytes, so a `RangeFile` fetches only those, on demand, doubling the request each time the
parser reads past what it has (Gemma's 262k-token vocabulary makes a ~6 MB header, most models
need one or two requests). Bytes come from the address the hub redirects to, as a download's do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError, NotAvailableOffline
from ..gguf_info import GGUFInfo, parse_stream

FIRST_RANGE = 256 * 1024
MAX_RANGE = 16 * 1024 * 1024


@dataclass(frozen=True)
class RepoFile:
    """One file of a repository as the tree listing describes it."""

    path: str
    size: int
    sha256: str | None  # the LFS oid: the sha256 of the content, when the file is in LFS


def endpoint() -> str:
    """HF_ENDPOINT read now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def offline() -> bool:
    from huggingface_hub import constants

    now = os.environ.get("HF_HUB_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES
    return constants.is_offline_mode() or now


def list_files(repo: str, revision: str = "main") -> list[RepoFile]:
    """Every file of the repository (recursive), with exact sizes; NotAvailableOffline when the
    hub cannot be reached, DownloadError when it answers that there is no such repository."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile as HfFile

    if offline():
        raise NotAvailableOffline(f"HF_HUB_OFFLINE is set: cannot list {repo} on the hub")
    api = HfApi(endpoint=endpoint())
    with _translated(repo, revision):
        _reachable()
        entries = list(api.list_repo_tree(repo, recursive=True, revision=revision))
    return [RepoFile(e.path, int(e.lfs.size if e.lfs else e.size), e.lfs.sha256 if e.lfs else None)
            for e in entries if isinstance(e, HfFile)]


def _reachable() -> None:
    """One plain request first: huggingface_hub retries a refused connection with backoff for
    ~20 s, which is no way to learn that the machine is offline."""
    from huggingface_hub.utils import get_session

    get_session().head(endpoint(), timeout=10)


def cached_files(repo: str) -> tuple[list[RepoFile], dict[str, Path]]:
    """The repository's files in the Hugging Face cache (newest snapshot first wins), for when
    the hub cannot be reached: exact sizes from the files themselves, and their paths."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--")) / "snapshots"
    found: dict[str, Path] = {}
    snapshots = sorted(folder.glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for snap in snapshots if folder.is_dir() else []:
        for f in snap.rglob("*"):
            name = f.relative_to(snap).as_posix()
            if f.is_file() and name not in found:
                found[name] = f
    return [RepoFile(n, p.stat().st_size, None) for n, p in found.items()], found


def read_header(repo: str, file: str, size: int, revision: str = "main") -> tuple[GGUFInfo, dict]:
    """The GGUF header of repo/file (size: its exact byte count), read by range requests.

    Returns the parsed header and what the reading cost: {"bytes", "requests", "commit"}.
    CorruptModel when the bytes are not a GGUF header or the file ends inside it."""
    from huggingface_hub import hf_hub_url

    url = hf_hub_url(repo, file, revision=revision, endpoint=endpoint())
    reader = RangeFile(url, size, f"{repo}/{file}")
    with _translated(repo, revision, file):
        info = parse_stream(reader, size, Path(f"hf:{repo}/{file}"))
    return info, {"bytes": reader.received, "requests": reader.requests, "commit": reader.commit}


class RangeFile:
    """A read-only, seekable view of a remote file that fetches bytes from its start on demand.

    The header is read front to back, so the buffer is one contiguous prefix of the file; each
    fetch asks for at least twice the previous one (up to MAX_RANGE), so a large header costs a
    handful of requests and a small one a single request of FIRST_RANGE bytes."""

    def __init__(self, url: str, size: int, label: str):
        self.url, self.size, self.label = url, size, label
        self.buf = bytearray()
        self.pos = 0
        self.chunk = FIRST_RANGE
        self.received = 0
        self.requests = 0
        self.commit: str | None = None
        self._location: str | None = None  # where the hub redirected to (the CDN)

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        self._fill(end)
        data = bytes(self.buf[self.pos:end])
        self.pos += len(data)
        return data

    def _fill(self, end: int) -> None:
        while len(self.buf) < end:
            start = len(self.buf)
            stop = min(self.size, max(end, start + self.chunk))
            self.buf += self._get(start, stop)
            self.chunk = min(self.chunk * 2, MAX_RANGE)

    def _get(self, start: int, stop: int) -> bytes:
        """Bytes [start, stop) with one Range request; never more than asked for."""
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        headers = build_hf_headers()
        url = self._location or self.url
        if self._location and _origin(self._location) != _origin(self.url):
            headers.pop("authorization", None)  # the token stays on the hub
        headers["Range"] = f"bytes={start}-{stop - 1}"
        self.requests += 1
        want = stop - start
        with get_session().stream("GET", url, headers=headers, follow_redirects=True) as r:
            if r.status_code >= 400:
                r.read()
                hf_raise_for_status(r)
            for hop in r.history:
                self.commit = self.commit or hop.headers.get("X-Repo-Commit")
            self.commit = self.commit or r.headers.get("X-Repo-Commit")
            self._location = str(r.url)
            if r.status_code == 200 and start > 0:
                raise DownloadError(f"{self.label}: the server ignores HTTP range requests, so "
                                    "the header cannot be read without downloading the file")
            out = bytearray()
            for block in r.iter_bytes():
                out += block
                if len(out) >= want:
                    break
        self.received += len(out)
        return bytes(out[:want])


def _origin(url: str) -> tuple:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


class _translated:
    """huggingface_hub's and httpx's exceptions as errors a user can act on."""

    def __init__(self, repo: str, revision: str, file: str | None = None):
        self.repo, self.revision, self.file = repo, revision, file

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, (DownloadError,)) or not isinstance(exc, Exception):
            return False
        import httpx2
        from huggingface_hub.errors import (
            GatedRepoError, HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError,
            RevisionNotFoundError)

        repo, where = self.repo, endpoint()
        if isinstance(exc, GatedRepoError):
            raise DownloadError(f"{repo} is gated: accept its terms on {where}/{repo} and log in "
                                "(`hf auth login` or HF_TOKEN)") from exc
        if isinstance(exc, RepositoryNotFoundError):
            raise DownloadError(f"repository {repo} was not found at {where} (if it is private, "
                                "log in with `hf auth login` or set HF_TOKEN)") from exc
        if isinstance(exc, RevisionNotFoundError):
            raise DownloadError(f"{repo} has no revision {self.revision!r}") from exc
        if isinstance(exc, RemoteEntryNotFoundError):
            raise DownloadError(f"{repo} has no file {self.file} at {self.revision}") from exc
        if isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code if exc.response is not None else "an error"
            raise DownloadError(f"the hub answered {status} for {repo}; try again later") from exc
        if isinstance(exc, (httpx2.TransportError, OSError)):
            raise NotAvailableOffline(f"could not reach {where} for {repo} "
                                      f"({type(exc).__name__}: {exc})") from exc
        return False
