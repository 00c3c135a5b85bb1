"""A stand-in for huggingface.co on 127.0.0.1: the resolve endpoint and an LFS/CDN file server.

It answers the way the real hub does for LFS files (every GGUF is one): HEAD and GET on
/{repo_id}/resolve/{revision}/{filename} return a 302 to a CDN address on another origin, carrying
X-Repo-Commit, X-Linked-Etag (the sha256) and X-Linked-Size; the CDN serves the bytes with Range
support (206). A missing file is a 404 with X-Error-Code: EntryNotFound, as on the hub. Xet
headers (X-Xet-Hash, a refresh route) are sent only when `xet` is set, as the hub does for
xet-backed repos; the refresh route is not served, so any attempt to use hf_xet shows in the log.

Two servers on two ports play hub and CDN, so the hub's redirect leaves the hub's origin as it does
in production (huggingface_hub then reads the file's metadata from the 302 itself). Every request
is logged, so tests can assert what went over the wire, e.g. that a cached pull made none.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request as the fake hub received it."""

    server: str  # "hub" or "cdn"
    method: str
    path: str
    range: str | None


@dataclass
class _Blob:
    data: bytes | None  # in memory, or read from `path` (large files: the Gemma starter)
    sha256: str
    announce: int  # the size the hub announces (X-Linked-Size); normally the size
    path: Path | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size

    def read(self, start: int, stop: int) -> bytes:
        if self.data is not None:
            return self.data[start:stop]
        with self.path.open("rb") as fh:
            fh.seek(start)
            return fh.read(stop - start)


@dataclass
class FakeHub:
    """Serve files under repo ids; log requests; optionally break a transfer on purpose."""

    commit: str = "0123456789abcdef0123456789abcdef01234567"
    files: dict[tuple[str, str], _Blob] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    served: int = 0  # bytes of file content the CDN sent
    extra: dict[str, list[str]] = field(default_factory=dict)  # repo -> non-LFS files listed
    down: bool = False  # every request gets a 503
    xet: bool = False  # announce files as xet-backed
    _drops: dict[str, tuple[int, bool]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, repo_id: str, filename: str, data: bytes, announce: int | None = None) -> str:
        """Publish `data` as `filename` in `repo_id`; returns its sha256 (the hub's LFS etag)."""
        sha = hashlib.sha256(data).hexdigest()
        self.files[(repo_id, filename)] = _Blob(data, sha, len(data) if announce is None else announce)
        return sha

    def add_file(self, repo_id: str, filename: str, path: Path) -> str:
        """Publish a file on disk without holding it in memory; returns its sha256."""
        digest = hashlib.sha256()
        with Path(path).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        sha = digest.hexdigest()
        self.files[(repo_id, filename)] = _Blob(None, sha, Path(path).stat().st_size, Path(path))
        return sha

    def interrupt(self, sha256: str, after: int, then_down: bool = False) -> None:
        """Make the next GET of this blob send `after` bytes and hang up; optionally go down then."""
        self._drops[sha256] = (after, then_down)

    def count(self, method: str | None = None, server: str | None = None) -> int:
        return sum(1 for r in self.requests
                   if (method is None or r.method == method) and (server is None or r.server == server))

    # -- serving ----------------------------------------------------------------------------

    def start(self) -> FakeHub:
        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, "hub"))
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, "cdn"))
        for srv in (self._hub, self._cdn):
            srv.daemon_threads = True
            threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        for srv in (self._hub, self._cdn):
            srv.shutdown()
            srv.server_close()

    @property
    def url(self) -> str:
        """The endpoint to put in HF_ENDPOINT."""
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def _blob(self, sha: str) -> _Blob | None:
        return next((b for b in self.files.values() if b.sha256 == sha), None)


def _handler(hub: FakeHub, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            with hub._lock:
                hub.requests.append(Seen(role, self.command, path, self.headers.get("Range")))
            if hub.down:
                return self._status(503, {"X-Error-Message": "Service Unavailable"})
            if role == "hub" and path.startswith("/api/models/"):
                self._tree(path)
            elif role == "hub":
                self._resolve(path)
            else:
                self._serve(path.lstrip("/"), body)

        def _resolve(self, path: str) -> None:
            repo, sep, rest = path.lstrip("/").partition("/resolve/")
            revision, _, filename = rest.partition("/")
            if not sep or not any(r == repo for r, _ in hub.files):
                return self._status(404, {"X-Error-Code": "RepoNotFound",
                                          "X-Error-Message": "Repository not found"})
            if revision not in ("main", hub.commit):
                return self._status(404, {"X-Error-Code": "RevisionNotFound",
                                          "X-Error-Message": "Invalid rev id"})
            blob = hub.files.get((repo, filename))
            if blob is None:
                return self._status(404, {"X-Error-Code": "EntryNotFound",
                                          "X-Error-Message": "Entry not found",
                                          "X-Repo-Commit": hub.commit})
            headers = {
                "Location": f"{hub.cdn_url}/{blob.sha256}?sig=fake",
                "X-Repo-Commit": hub.commit,
                "X-Linked-Etag": f'"{blob.sha256}"',
                "X-Linked-Size": str(blob.announce),
                "ETag": '"0000000000000000000000000000000000000000"',  # the LFS pointer's git sha
            }
            if hub.xet:
                headers["X-Xet-Hash"] = blob.sha256[::-1]
                headers["X-Xet-Refresh-Route"] = f"{hub.url}/api/models/{repo}/xet-read-token/{hub.commit}"
            self._status(302, headers)

        def _tree(self, path: str) -> None:
            """GET /api/models/{repo}/tree/{revision}: the recursive listing list_repo_tree
            reads (one page), LFS sizes and sha256 included."""
            repo, sep, rest = path[len("/api/models/"):].partition("/tree/")
            files = sorted((f, b) for (r, f), b in hub.files.items() if r == repo)
            if not sep or not files and repo not in hub.extra:
                return self._status(404, {"X-Error-Code": "RepoNotFound",
                                          "X-Error-Message": "Repository not found"})
            entries, folders = [], set()
            for name, blob in files:
                folders.update("/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1))
                entries.append({"type": "file", "oid": "0" * 40, "size": blob.announce,
                                "path": name, "lfs": {"oid": blob.sha256, "size": blob.announce,
                                                      "pointerSize": 134}})
            for name in hub.extra.get(repo, []):
                entries.append({"type": "file", "oid": "1" * 40, "size": 100, "path": name})
            entries += [{"type": "directory", "oid": "2" * 40, "size": 0, "path": d}
                        for d in sorted(folders)]
            raw = json.dumps(entries).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _serve(self, sha: str, body: bool) -> None:
            blob = hub._blob(sha)
            if blob is None:
                return self._status(404, {})
            size, start, stop = blob.size, 0, blob.size
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                first, _, last = rng[len("bytes="):].partition("-")
                start = int(first)
                stop = min(size, int(last) + 1) if last else size
                if start >= size:
                    return self._status(416, {"Content-Range": f"bytes */{size}"})
            part = blob.read(start, stop) if body else b""
            partial = rng is not None and (start, stop) != (0, size)
            self.send_response(206 if partial else 200)
            self.send_header("Content-Length", str(stop - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{sha}"')
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
            self.end_headers()
            if not body:
                return
            with hub._lock:
                hub.served += len(part)
            drop = hub._drops.pop(sha, None)
            if drop is not None:
                after, then_down = drop
                self.wfile.write(part[:after])
                self.wfile.flush()
                hub.down = then_down
                self.close_connection = True  # the socket closes short of Content-Length
                return
            self.wfile.write(part)

        def _status(self, code: int, headers: dict[str, str]) -> None:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
