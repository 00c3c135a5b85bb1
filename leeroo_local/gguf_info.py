"""Header facts of a GGUF file, read without loading tensor data.

The `gguf` package's GGUFReader maps every element of every metadata array (a 262k-token
vocabulary is ~800k small numpy views) and takes ~30 s on Gemma 3's header here. We stream the
header ourselves with the `gguf` package's format constants and read the same file in well under
a second. Every length is checked against the file size, so a truncated or corrupt file raises
CorruptModel instead of reading garbage.

Even that costs ~70 ms on a 262k-token vocabulary, paid by the parent (memory plan) and the worker
(before llama.cpp sees the file) at every cold load, so a parsed header is kept in
$LEEROO_HOME/cache/gguf, keyed by the file's path, size and modification time: any change to
the file is a miss, and an unreadable cache entry is simply parsed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType

from . import paths
from .diskerrors import removed_on_failure
from .errors import CorruptModel

GGUF_MAGIC = b"GGUF"
_SCALAR = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
# Arrays longer than this are skipped and only their length kept (vocabularies, merges).
_KEEP_ARRAY = 4096
# String arrays whose bytes are hashed while read (GGUFInfo.digests): the token list, which
# says whether two files share a tokenizer (a draft model must share its target's).
_DIGESTED = ("tokenizer.ggml.tokens",)
_CACHE_FORMAT = 2  # bumped when a cached parse gains a field: older entries are parsed again


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type: str
    n_bytes: int
    offset: int


@dataclass
class GGUFInfo:
    """What a GGUF header says: metadata, tensors, and the facts the memory model needs."""

    path: Path
    version: int
    metadata: dict[str, Any]
    array_lengths: dict[str, int]
    tensors: list[TensorInfo] = field(repr=False)
    data_offset: int = 0
    file_size: int = 0
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def tokenizer(self) -> tuple[str, str, int, str] | None:
        """(tokenizer model, pre-tokenizer, vocabulary size, SHA-1 of the token list): equal
        for two files that turn text into the same token ids; None without a token list."""
        digest = self.digests.get("tokenizer.ggml.tokens")
        if digest is None:
            return None
        return (str(self.metadata.get("tokenizer.ggml.model", "")),
                str(self.metadata.get("tokenizer.ggml.pre", "")),
                int(self.array_lengths.get("tokenizer.ggml.tokens", 0)), digest)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch_value(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def weights_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    @property
    def n_params(self) -> int:
        total = 0
        for t in self.tensors:
            n = 1
            for d in t.shape:
                n *= d
            total += n
        return total

    @property
    def file_type(self) -> str:
        ft = self.metadata.get("general.file_type")
        try:
            return LlamaFileType(int(ft)).name.removeprefix("MOSTLY_") if ft is not None else "?"
        except ValueError:
            return f"type{ft}"


class _Reader:
    """Bounded little-endian reads over a file; every overrun is a CorruptModel."""

    def __init__(self, fh: BinaryIO, size: int, path: Path):
        self.fh, self.size, self.path = fh, size, path

    def fail(self, what: str) -> CorruptModel:
        return CorruptModel(f"{self.path}: {what}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.fh.tell() + n > self.size:
            raise self.fail(
                f"truncated or corrupt header: needs {n} bytes at offset {self.fh.tell()}, "
                f"file has {self.size}"
            )
        return self.fh.read(n)

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self, hasher=None) -> str:
        head = self.take(8)
        raw = self.take(struct.unpack("<Q", head)[0])
        if hasher is not None:  # the bytes as stored: the same digest as skip_strings'
            hasher.update(head)
            hasher.update(raw)
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int, hasher=None) -> None:
        # One file read per megabyte instead of one per string (vocabularies hold ~262k).
        while count:
            base = self.fh.tell()
            buf = self.fh.read(1 << 20)
            off = 0
            while count and off + 8 <= len(buf):
                n = struct.unpack_from("<Q", buf, off)[0]
                if off + 8 + n > len(buf):
                    break
                off += 8 + n
                count -= 1
            if count and off == 0:  # one string longer than the block, or the file ended
                self.fh.seek(base)
                self.string(hasher)
                count -= 1
                continue
            if hasher is not None:
                hasher.update(buf[:off])
            self.fh.seek(base + off)

    def value(self, vtype: int, key: str, lengths: dict[str, int],
              digests: dict[str, str] | None = None) -> Any:
        try:
            vt = GGUFValueType(vtype)
        except ValueError:
            raise self.fail(f"unknown value type {vtype} for key {key!r}") from None
        if vt in _SCALAR:
            return self.unpack(_SCALAR[vt])
        if vt == GGUFValueType.STRING:
            return self.string()
        try:
            etype = GGUFValueType(self.unpack("<I"))
        except ValueError:
            raise self.fail(f"unknown array type for key {key!r}") from None
        count = self.unpack("<Q")
        lengths[key] = count
        if etype == GGUFValueType.STRING:
            hasher = hashlib.sha1() if key in _DIGESTED and digests is not None else None
            if count > _KEEP_ARRAY:
                self.skip_strings(count, hasher)
                kept = None
            else:
                kept = [self.string(hasher) for _ in range(count)]
            if hasher is not None:
                digests[key] = hasher.hexdigest()
            return kept
        if etype == GGUFValueType.ARRAY:
            raise self.fail(f"nested arrays are not supported (key {key!r})")
        fmt = _SCALAR[etype]
        width = struct.calcsize(fmt)
        if count * width > self.size:
            raise self.fail(f"array {key!r} of {count} items is larger than the file")
        if count > _KEEP_ARRAY:
            self.fh.seek(count * width, os.SEEK_CUR)
            return None
        raw = self.take(count * width)
        return list(struct.unpack("<" + fmt[1:] * count, raw))


def tensor_type_for(name: str) -> str | None:
    """The ggml tensor type a file type (or tensor type) name stands for: Q4_0 -> Q4_0,
    Q3_K_S -> Q3_K, IQ3_M -> IQ3_S; None when there is none."""
    members = GGMLQuantizationType.__members__
    key = name.upper()
    for candidate in (key, key.rsplit("_", 1)[0], key.rsplit("_", 1)[0] + "_S"):
        if candidate in members:
            return candidate
    return None


def block_size(tensor_type: str) -> int:
    """Elements per quantization block of a ggml tensor type (rows must be a multiple)."""
    return GGML_QUANT_SIZES[GGMLQuantizationType[tensor_type]][0]


def _tensor_bytes(shape: tuple[int, ...], qtype: GGMLQuantizationType) -> int:
    block, type_size = GGML_QUANT_SIZES[qtype]
    n = 1
    for d in shape:
        n *= d
    return n // block * type_size


def read_gguf(path: str | Path, cache: bool = True) -> GGUFInfo:
    """Parse a GGUF header (metadata and tensor table); CorruptModel on anything malformed.

    `cache`: reuse (and keep) the parse of this very file, see the module docstring.
    """
    path = Path(path)
    if not cache:
        return _parse(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise CorruptModel(f"{path}: cannot open: {exc.strerror or exc}") from None
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{_CACHE_FORMAT}"
    entry = paths.home() / "cache" / "gguf" / (hashlib.sha1(key.encode()).hexdigest() + ".json")
    try:
        data = json.loads(entry.read_text(encoding="utf-8"))
        if data.get("key") == key:
            return _from_json(path, data)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    info = _parse(path)
    tmp = entry.with_suffix(f".{os.getpid()}.tmp")
    try:
        with removed_on_failure(tmp):
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(_to_json(info, key)), encoding="utf-8")
            tmp.replace(entry)
    except (OSError, TypeError, ValueError):
        pass  # a cache that cannot be written costs only time
    return info


def _to_json(info: GGUFInfo, key: str) -> dict:
    return {"key": key, "version": info.version, "metadata": info.metadata,
            "array_lengths": info.array_lengths, "data_offset": info.data_offset,
            "file_size": info.file_size, "digests": info.digests,
            "tensors": [[t.name, list(t.shape), t.type, t.n_bytes, t.offset] for t in info.tensors]}


def _from_json(path: Path, data: dict) -> GGUFInfo:
    tensors = [TensorInfo(n, tuple(s), ty, nb, off) for n, s, ty, nb, off in data["tensors"]]
    return GGUFInfo(path, data["version"], data["metadata"], data["array_lengths"], tensors,
                    data["data_offset"], data["file_size"], data["digests"])


def _parse(path: Path) -> GGUFInfo:
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as exc:
        raise CorruptModel(f"{path}: cannot open: {exc.strerror or exc}") from None
    with fh:
        return parse_stream(fh, size, path)


def parse_stream(fh: BinaryIO, size: int, path: Path) -> GGUFInfo:
    """Parse a GGUF header from any seekable binary stream of `size` bytes (a local file, or a
    remote one read by HTTP range requests); `path` names it in errors and in the result."""
    r = _Reader(fh, size, path)
    if size < 24:
        raise r.fail(f"not a GGUF file (only {size} bytes)")
    if fh.read(4) != GGUF_MAGIC:
        raise r.fail("not a GGUF file (bad magic; expected 'GGUF')")
    version = r.unpack("<I")
    if version not in (2, 3):
        raise r.fail(f"unsupported GGUF version {version}")
    n_tensors, n_kv = r.unpack("<Q"), r.unpack("<Q")
    if n_tensors > size // 24 or n_kv > size // 12:
        raise r.fail(f"corrupt header: {n_tensors} tensors, {n_kv} keys in {size} bytes")
    metadata: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    digests: dict[str, str] = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.unpack("<I"), key, lengths, digests)
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.unpack("<I")
        if n_dims > 8:
            raise r.fail(f"corrupt tensor {name!r}: {n_dims} dimensions")
        shape = tuple(r.unpack("<Q") for _ in range(n_dims))
        raw_type = r.unpack("<I")
        try:
            qtype = GGMLQuantizationType(raw_type)
        except ValueError:
            raise r.fail(f"tensor {name!r} has unknown type {raw_type}") from None
        offset = r.unpack("<Q")
        tensors.append(TensorInfo(name, shape, qtype.name, _tensor_bytes(shape, qtype), offset))
    align = int(metadata.get("general.alignment", 32) or 32)
    data_offset = -(-fh.tell() // align) * align
    end = max((t.offset + t.n_bytes for t in tensors), default=0) + data_offset
    if end > size:
        raise CorruptModel(
            f"{path}: truncated: tensor data needs {end} bytes, the file has {size} "
            f"({(end - size) / end:.0%} missing; an interrupted download? pull it again)"
        )
    return GGUFInfo(path, version, metadata, lengths, tensors, data_offset, size, digests)
