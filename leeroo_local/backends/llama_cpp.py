"""llama.cpp through llama-cpp-python: load a GGUF, stream chat or completion, quantize.

The only module that imports llama_cpp. llama.cpp's own log goes to a ring buffer instead of
the terminal, so a failed load can quote llama.cpp's last words in its error message.
"""

from __future__ import annotations

import codecs
import collections
import ctypes
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from ..errors import ContextOverflow, CorruptModel, LeerooError
from ..gguf_info import read_gguf
from .base import Chunk, LoadInfo, Sampling

_LOG: collections.deque[str] = collections.deque(maxlen=40)
_log_callback = None  # keep a reference: llama.cpp calls it from C


def _install_logger() -> None:
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _cb(level: int, text: bytes, user_data) -> None:
        _LOG.append(text.decode("utf-8", errors="replace"))

    _log_callback = _cb
    llama_cpp.llama_log_set(_cb, ctypes.c_void_p(0))


def warm_up() -> None:
    """Import llama_cpp and initialise its backend, so that a later load costs only the model."""
    import llama_cpp

    _install_logger()
    llama_cpp.llama_backend_init()


def supports_gpu_offload() -> bool:
    """Whether this llama.cpp build can offload layers to a GPU (CUDA, Metal, Vulkan, ...)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def default_threads() -> int:
    """llama-cpp-python's own default: half the logical cores. Oversubscribed cores make
    ggml's spinning thread barriers collapse, so never more than the machine can give."""
    return max(1, (os.cpu_count() or 2) // 2)


def last_log(lines: int = 6) -> str:
    """The tail of llama.cpp's log, for error messages."""
    return "".join(list(_LOG)[-lines:]).strip()


def _formatter(llm, template: str | None):
    if not template:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def piece(tok: int) -> str:
        return llm.detokenize([tok], special=True).decode("utf-8", errors="ignore") if tok >= 0 else ""

    return Jinja2ChatFormatter(template, eos_token=piece(llm.token_eos()), bos_token=piece(llm.token_bos()))


def _find_stop(text: str, stops: list[str]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


# How a base model (no chat template in its GGUF) sees a conversation.
_ROLE = {"system": "System", "user": "User", "assistant": "Assistant"}


def transcript(messages: list[dict]) -> str:
    """A plain-text rendering of chat messages for base models without a chat template."""
    lines = [f"{_ROLE.get(m.get('role', 'user'), 'User')}: {m.get('content') or ''}" for m in messages]
    return "\n".join(lines) + "\nAssistant:"


class LlamaCppModel:
    """A GGUF expert loaded in this process."""

    def __init__(self, path: str | Path, n_ctx: int = 4096, n_threads: int | None = None,
                 n_gpu_layers: int = 0, seed: int = 0):
        path = Path(path)
        header = read_gguf(path)  # clear CorruptModel before llama.cpp sees a bad file
        _install_logger()
        import llama_cpp

        started = time.perf_counter()
        try:
            self._llm = llama_cpp.Llama(
                str(path), n_ctx=n_ctx, n_threads=n_threads or default_threads(),
                n_gpu_layers=n_gpu_layers, seed=seed, verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise CorruptModel(f"{path}: llama.cpp could not load it: {exc}. {last_log()}") from None
        self.path = path
        self._lib = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self._formatter = _formatter(self._llm, header.metadata.get("tokenizer.chat_template"))
        self.info = LoadInfo(
            load_s=time.perf_counter() - started, n_ctx=min(n_ctx, self._llm.n_ctx()),
            n_gpu_layers=n_gpu_layers, chat_template=self._formatter is not None,
        )

    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def render_chat(self, messages: list[dict]) -> tuple[list[int], list[str]]:
        """Prompt tokens and extra stop strings for a conversation.

        Uses the GGUF's chat template (Jinja, as llama.cpp's own handlers do). A base model
        without one continues a lone user message as a plain prompt, and sees a longer
        conversation as a transcript that stops before the next "User:" turn.
        """
        if self._formatter is None:
            if len(messages) == 1 and messages[0].get("role") == "user":
                return self.tokenize(messages[0].get("content") or ""), []  # a base model continues
            return self.tokenize(transcript(messages)), ["\nUser:", "\nSystem:"]
        result = self._formatter(messages=messages)
        tokens = self.tokenize(result.prompt, add_bos=not result.added_special)
        return tokens, [s for s in (result.stop if isinstance(result.stop, list) else [result.stop]) if s]

    def chat(self, messages: list[dict], sampling: Sampling) -> Iterator[Chunk]:
        """Stream a reply to chat messages."""
        tokens, stops = self.render_chat(messages)
        return self.generate(tokens, sampling.model_copy(update={"stop": list(sampling.stop) + stops}))

    def complete(self, prompt: str, sampling: Sampling) -> Iterator[Chunk]:
        """Stream a plain completion of `prompt`."""
        return self.generate(self.tokenize(prompt), sampling)

    def generate(self, tokens: list[int], sampling: Sampling) -> Iterator[Chunk]:
        """Sample token by token: exact token counts, stop strings, and cancellation by close().

        Raises ContextOverflow before any work when the prompt alone fills the context.
        """
        if len(tokens) >= self.info.n_ctx:
            raise ContextOverflow(len(tokens), self.info.n_ctx)
        return self._stream(tokens, sampling)

    def _stream(self, tokens: list[int], s: Sampling) -> Iterator[Chunk]:
        llm = self._llm
        budget = min(s.max_tokens, self.info.n_ctx - len(tokens))
        llm.set_seed(s.seed if s.seed is not None else random.getrandbits(31))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = ""  # text that might be the start of a stop string
        longest_stop = max((len(x) for x in s.stop), default=0)
        produced, finish = 0, "length"
        is_eog = self._lib.llama_vocab_is_eog
        gen = llm.generate(tokens, temp=s.temperature, top_p=s.top_p, top_k=40 if s.temperature else 1)
        try:
            for tok in gen:
                if is_eog(self._vocab, tok):
                    finish = "stop"
                    break
                produced += 1
                held += decoder.decode(llm.detokenize([tok], special=False))
                cut = _find_stop(held, s.stop)
                if cut is not None:
                    held, finish = held[:cut], "stop"
                    break
                safe = len(held) - (longest_stop - 1) if longest_stop else len(held)
                if safe > 0:
                    yield Chunk(text=held[:safe])
                    held = held[safe:]
                if produced >= budget:
                    break
        finally:
            gen.close()
        held += decoder.decode(b"", final=True)
        if held:
            yield Chunk(text=held)
        yield Chunk(finish_reason=finish, prompt_tokens=len(tokens), completion_tokens=produced)

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation after `context` (multiple-choice scoring).

        The context is evaluated once; each continuation reuses its KV cache.
        """
        import numpy as np

        llm = self._llm
        ctx = self.tokenize(context)
        out = []
        for cont_text in continuations:
            full = self.tokenize(context + cont_text)
            split = _common_prefix(ctx, full)
            cont = full[split:] or full[-1:]
            split = len(full) - len(cont)
            if len(full) >= self.info.n_ctx:
                raise ContextOverflow(len(full), self.info.n_ctx)
            # Reuse the cached prefix, but always decode at least the last context token so
            # the logits read below belong to this context, not to the previous continuation.
            reuse = min(_common_prefix(list(llm.input_ids[: llm.n_tokens]), full[:split]), split - 1)
            llm.n_tokens = reuse
            llm.eval(full[reuse:split])
            total = 0.0
            for tok in cont:
                row = np.ctypeslib.as_array(
                    self._lib.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),)
                ).astype(np.float64)
                top = row.max()
                total += row[tok] - top - np.log(np.exp(row - top).sum())
                llm.eval([tok])
            out.append(float(total))
        return out

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()


def _quantize_child(src: str, dst: str, ftype: int, allow_requantize: bool, embed_type: int) -> None:
    """Runs in a child process (see quantize_file); exit code 0 on success."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = allow_requantize
    params.nthread = os.cpu_count() or 1
    if embed_type >= 0:
        params.token_embedding_type = embed_type
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    os._exit(0 if rc == 0 else 3)


def quant_types() -> dict[str, int]:
    """Quantization names llama.cpp's quantizer accepts, with their ftype codes."""
    import llama_cpp

    return {n.removeprefix("LLAMA_FTYPE_MOSTLY_"): getattr(llama_cpp, n)
            for n in dir(llama_cpp) if n.startswith("LLAMA_FTYPE_MOSTLY_")}


def quantize_file(src: Path, dst: Path, qtype: str, *, allow_requantize: bool = False,
                  same_embeddings: bool = True) -> Path:
    """Quantize `src` to `qtype` with llama.cpp's quantizer, in a child process.

    llama.cpp aborts the whole process on some impossible conversions, so the work runs in a
    spawned child; the output appears at `dst` only when complete.
    """
    types = quant_types()
    key = qtype.upper()
    if key not in types:
        raise LeerooError(f"unknown quantization {qtype!r}; llama.cpp offers {', '.join(sorted(types))}")
    read_gguf(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_suffix(dst.suffix + ".partial")
    import gguf

    embed = int(gguf.GGMLQuantizationType[key].value) if same_embeddings and key in gguf.GGMLQuantizationType.__members__ else -1
    code = (
        "import sys; from leeroo_local.backends.llama_cpp import _quantize_child; "
        "_quantize_child(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == '1', int(sys.argv[5]))"
    )
    args = [sys.executable, "-c", code, str(src), str(partial), str(types[key]),
            "1" if allow_requantize else "0", str(embed)]
    proc = subprocess.run(args, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        said = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower() or "requantiz" in ln.lower()]
        detail = (said or proc.stderr.strip().splitlines() or ["no output"])[-1].strip()
        raise LeerooError(
            f"llama.cpp could not quantize {src.name} to {key} (exit {proc.returncode}): {detail}"
        )
    partial.replace(dst)
    return dst
