"""llama.cpp through llama-cpp-python: load a GGUF, stream chat or completion, quantize.

The only module that imports llama_cpp. llama.cpp's own log goes to a ring buffer instead of
the terminal, so a failed load can quote llama.cpp's last words in its error message.
"""

from __future__ import annotations

import codecs
import collections
import ctypes
import functools
import json
import os
import random
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

# llama.cpp's libraries load before numpy (gguf_info imports it): with numpy loaded first, a CUDA
# build of llama-cpp-python crashed (SIGSEGV) in every model load on an H200 machine
# (bench/gpu_check.sh). The CPU build does not care.
import llama_cpp  # noqa: E402,F401  isort: skip

from ..errors import ContextOverflow, CorruptModel, LeerooError, MissingCapability, SchemaError
from ..capabilities import EMBEDDINGS, from_header
from ..gguf_info import read_gguf
from ..hardware import physical_cores
from ..limits import seed32
from ..toolcalls import Tools, forced_call, has_tool_turns, render_chat
from .base import Chunk, LoadInfo, Sampling

if TYPE_CHECKING:
    import numpy as np
    from llama_cpp.llama import LlamaState

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


def backend_version() -> str:
    """llama-cpp-python's version, for the provenance of measurements."""
    import llama_cpp

    return str(llama_cpp.__version__)


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


@functools.lru_cache(maxsize=16)
def _grammar_of(schema: str) -> llama_cpp.LlamaGrammar:
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        return LlamaGrammar.from_json_schema(schema, verbose=False)
    except Exception as exc:  # noqa: BLE001 - the converter raises whatever it meets
        raise SchemaError(f"response_format: the JSON schema cannot be followed: "
                          f"{type(exc).__name__}: {exc}") from None


def _grammar(schema: dict) -> llama_cpp.LlamaGrammar:
    """The grammar that makes llama.cpp write JSON this schema accepts (cached: an editor sends
    the same schema again and again)."""
    return _grammar_of(json.dumps(schema, sort_keys=True))


def _find_stop(text: str, stops: list[str]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")  # a line that is empty or holds only spaces
_OPEN_BLANK_LINE = re.compile(r"\n[^\S\n]*$")


def _blank_line_after_text(text: str, answered: bool) -> int | None:
    """Where a blank line ends a base model's answer: the first one after visible text (a blank
    line before any text is the model clearing its throat, not an answer). A line of spaces is
    blank too: small models often write " \n \n" between paragraphs."""
    for m in _BLANK_LINE.finditer(text):
        if answered or text[:m.start()].strip():
            return m.start()
    return None


def _open_blank_line(text: str) -> int:
    """Where a blank line may be starting at the end of `text` (held back until it is known)."""
    m = _OPEN_BLANK_LINE.search(text)
    return m.start() if m else len(text)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
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


def _after(prefill: str, stream: Iterator[Chunk]) -> Iterator[Chunk]:
    """The forced call's opening (in the prompt, as if the expert had written it), then the
    expert's own text: the answer the parser reads."""
    yield Chunk(text=prefill)
    yield from stream


class PromptCache:
    """KV states of the conversations an expert left for another, so that the next turn of each
    is not computed again: one context holds one conversation, and an editor interleaves chat,
    autocomplete and agent calls. Least recently used states go first past `capacity_bytes`."""

    MIN_TOKENS = 64
    """A context shorter than this is cheaper to compute again than to store."""

    def __init__(self, capacity_bytes: int):
        self.capacity_bytes = capacity_bytes
        self._states: collections.OrderedDict[tuple[int, ...], LlamaState] = (
            collections.OrderedDict())

    @property
    def size_bytes(self) -> int:
        return sum(s.llama_state_size for s in self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def best(self, tokens: list[int]) -> tuple[tuple[int, ...] | None, int]:
        """The stored context sharing the longest prefix with `tokens`, and that length."""
        found = max(((k, _common_prefix(k, tokens)) for k in self._states),
                    key=lambda kv: kv[1], default=(None, 0))
        return found

    def take(self, key: tuple[int, ...]):
        self._states.move_to_end(key)
        return self._states[key]

    def put(self, key: tuple[int, ...], state) -> None:
        if state.llama_state_size > self.capacity_bytes:
            return
        self._states.pop(key, None)
        self._states[key] = state
        while self.size_bytes > self.capacity_bytes:
            self._states.popitem(last=False)


NGRAM_DRAFT_TOKENS = 10  # llama-cpp-python's LlamaPromptLookupDecoding default


@functools.cache
def _lookup_llama() -> type:
    """llama_cpp.Llama that verifies prompt-lookup drafts without keeping every position's
    logits. llama-cpp-python's own speculative path (draft_model=) sets logits_all, which keeps
    n_ctx x vocabulary floats (4 GiB for Gemma's 262k tokens at 4k context) and computes the
    output layer for every prompt token; a draft needs logits only for the few positions it
    checks. So: logits for every position of a short batch (a sampled token and its drafts),
    for the last one of a prompt, and none kept in `scores`."""

    class LookupLlama(llama_cpp.Llama):
        def eval(self, tokens: Sequence[int]) -> None:
            every = len(tokens) <= NGRAM_DRAFT_TOKENS + 1
            self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
            for i in range(0, len(tokens), self.n_batch):
                batch = tokens[i: min(len(tokens), i + self.n_batch)]
                n_past = self.n_tokens
                self._batch.set_batch(batch=batch, n_past=n_past, logits_all=every)
                self._ctx.decode(self._batch)
                self.input_ids[n_past: n_past + len(batch)] = batch
                self.n_tokens += len(batch)
                self._requires_eval = False

    return LookupLlama


class LlamaCppModel:
    """A GGUF expert loaded in this process."""

    def __init__(self, path: str | Path, n_ctx: int = 4096, n_threads: int | None = None,
                 n_gpu_layers: int = 0, seed: int = 0, n_threads_batch: int | None = None,
                 prompt_cache_bytes: int = 0, draft: str | None = None):
        """`draft`: "ngram" decodes with prompt lookup (tokens copied from the prompt and the
        answer so far are drafted and checked in one batch: edits that repeat their input go
        faster, the answer is the one sampling gives without it); a draft model is not
        supported here (the llama-server backend has it)."""
        path = Path(path)
        header = read_gguf(path)  # clear CorruptModel before llama.cpp sees a bad file
        _install_logger()
        import llama_cpp

        started = time.perf_counter()
        threads = n_threads or physical_cores()  # llama.cpp's and Ollama's default
        # An embedding model (it pools) is loaded to embed, and only to embed.
        self.embedding = EMBEDDINGS in from_header(path)
        batch_threads = n_threads_batch or threads
        if draft not in (None, "ngram"):
            raise MissingCapability("speculative: the worker backend drafts only with prompt "
                                    "lookup (\"ngram\"); a draft model needs the llama-server "
                                    "backend", field="speculative")
        try:
            self._llm = (_lookup_llama() if draft else llama_cpp.Llama)(
                str(path), n_ctx=n_ctx, n_threads=threads, n_gpu_layers=n_gpu_layers, seed=seed,
                verbose=False,
                # llama.cpp's own default (llama-cpp-python's is every core): prompt batches on
                # more threads than decoding gets collapse when the other cores are busy.
                n_threads_batch=batch_threads, embedding=self.embedding,
            )
        except (ValueError, RuntimeError) as exc:
            raise CorruptModel(f"{path}: llama.cpp could not load it: {exc}. {last_log()}") from None
        if draft:  # set after construction: draft_model= would turn logits_all on
            from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

            self._llm.draft_model = LlamaPromptLookupDecoding(num_pred_tokens=NGRAM_DRAFT_TOKENS)
        self.path = path
        self._lib = llama_cpp
        self._batch: Any = None  # llama_batch for _decode, made on first use
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        template = header.metadata.get("tokenizer.chat_template")
        self._template = template if isinstance(template, str) and template else None
        self._formatter = _formatter(self._llm, self._template)
        self.info = LoadInfo(
            load_s=time.perf_counter() - started, n_ctx=min(n_ctx, self._llm.n_ctx()),
            n_gpu_layers=n_gpu_layers, chat_template=self._formatter is not None,
            n_threads=threads, n_threads_batch=batch_threads,
            extra={"draft": draft} if draft else {},
        )
        self.prompt_cache = PromptCache(prompt_cache_bytes) if prompt_cache_bytes else None

    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def render_chat(self, messages: list[dict], tools: Tools | None = None,
                    prefill: str = "") -> tuple[list[int], list[str]]:
        """Prompt tokens and extra stop strings for a conversation.

        Uses the GGUF's chat template (Jinja, as llama.cpp's own handlers do). A conversation
        with tools, calls or tool results is rendered by toolcalls.render (the same for both
        local backends), `prefill` after it. A base model without a template continues a lone
        user message as a plain prompt, and sees a longer conversation as a transcript that
        stops before the next "User:" turn.
        """
        if tools is not None or has_tool_turns(messages):
            if self._template is None:
                raise MissingCapability(f"tools: {self.path.name} has no chat template to "
                                        f"render tools with", field="tools")
            assert self._formatter is not None  # made whenever there is a template
            piece = self._formatter.bos_token, self._formatter.eos_token
            prompt = render_chat(self._template, messages,
                                 list(tools.functions) if tools else None,
                                 bos_token=piece[0], eos_token=piece[1])
            return self.tokenize(prompt + prefill, add_bos=False), [s for s in piece[1:] if s]
        if self._formatter is None:
            if len(messages) == 1 and messages[0].get("role") == "user":
                return self.tokenize(messages[0].get("content") or ""), []  # a base model continues
            return self.tokenize(transcript(messages)), ["\nUser:", "\nSystem:"]
        result = self._formatter(messages=messages)
        tokens = self.tokenize(result.prompt, add_bos=not result.added_special)
        return tokens, [s for s in (result.stop if isinstance(result.stop, list) else [result.stop]) if s]

    def chat(self, messages: list[dict], sampling: Sampling,
             tools: Tools | None = None) -> Iterator[Chunk]:
        """Stream a reply to chat messages.

        A base model (no chat template) continuing a one-line prompt stops at the first blank
        line after its answer: left alone it goes on to write the next paragraph of an imagined
        document, often the same sentence again. With forced tools (`required`, a named
        function) the answer is the template's call opening, then JSON its schema accepts.
        """
        prefill = ""
        if tools is not None and tools.forced and self._template is not None:
            forced = forced_call(self._template, tools)
            prefill = forced.prefill
            sampling = sampling.model_copy(update={"json_schema": forced.schema})
        tokens, stops = self.render_chat(messages, tools, prefill)
        content = messages[-1].get("content") or "" if messages else ""
        one_line = (self._formatter is None and len(messages) == 1
                    and "\n" not in str(content).strip())
        stopping = sampling.model_copy(update={"stop": list(sampling.stop) + stops})
        try:
            stream = self.generate(tokens, stopping,
                                   end_at_blank_line=one_line and sampling.json_schema is None)
        except SchemaError as exc:
            if tools is None or not tools.forced:
                raise
            raise SchemaError(str(exc).replace("response_format:", "tools: a function's "
                                               "parameters:", 1), field="tools") from None
        return _after(prefill, stream) if prefill else stream

    def complete(self, prompt: str, sampling: Sampling) -> Iterator[Chunk]:
        """Stream a plain completion of `prompt`."""
        return self.generate(self.tokenize(prompt), sampling)

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """(one normalised vector per text, the tokens read) of an embedding model."""
        if not self.embedding:
            raise MissingCapability(f"model: {self.path.name} is not an embedding model",
                                    field="model")
        for text in texts:
            if len(self.tokenize(text)) > self.info.n_ctx:
                raise ContextOverflow(len(self.tokenize(text)), self.info.n_ctx)
        vectors, count = self._llm.embed(texts, normalize=True, return_count=True)
        return [list(map(float, v)) for v in vectors], int(count)

    def infill(self, prefix: str, suffix: str, sampling: Sampling) -> Iterator[Chunk]:
        """Stream the middle between `prefix` and `suffix` (fill-in-the-middle, an editor's
        autocomplete): the model's FIM tokens around them, prefix-suffix-middle order, as
        llama.cpp's own infill does."""
        vocab, lib = self._vocab, self._lib
        pre, suf, mid = (lib.llama_vocab_fim_pre(vocab), lib.llama_vocab_fim_suf(vocab),
                         lib.llama_vocab_fim_mid(vocab))
        if min(pre, suf, mid) < 0:
            raise MissingCapability(f"suffix: {self.path.name} has no fill-in-the-middle tokens",
                                    field="suffix")
        bos = [self._llm.token_bos()] if self._lib.llama_vocab_get_add_bos(vocab) else []
        tokens = (bos + [pre] + self.tokenize(prefix, add_bos=False) + [suf]
                  + self.tokenize(suffix, add_bos=False) + [mid])
        return self.generate(tokens, sampling)

    def generate(self, tokens: list[int], sampling: Sampling, *,
                 end_at_blank_line: bool = False) -> Iterator[Chunk]:
        """Sample token by token: exact token counts, stop strings, and cancellation by close().

        Raises ContextOverflow (the prompt alone fills the context) or SchemaError (a JSON
        schema llama.cpp cannot follow) before any work.
        """
        if sampling.json_schema is not None:
            _grammar(sampling.json_schema)
        if len(tokens) >= self.info.n_ctx:
            raise ContextOverflow(len(tokens), self.info.n_ctx)
        return self._stream(tokens, sampling, end_at_blank_line)

    def _stream(self, tokens: list[int], s: Sampling, blank: bool) -> Iterator[Chunk]:
        llm = self._llm
        budget = min(s.max_tokens, self.info.n_ctx - len(tokens))
        llm.set_seed(seed32(s.seed) if s.seed is not None else random.getrandbits(31))
        # The penalties' window, read per generate(): llama.cpp allocates it on every request,
        # and a window past the context sees nothing more.
        llm.last_n_tokens_size = min(s.repeat_last_n, self.info.n_ctx)
        cached = min(self._resume(tokens), len(tokens) - 1)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = ""  # text that might be the start of a stop string
        longest_stop = max([len(x) for x in s.stop] + [0])
        produced, finish, answered = 0, "length", False
        is_eog = self._lib.llama_vocab_is_eog
        gen = llm.generate(tokens, temp=s.temperature, top_p=s.top_p,
                           top_k=s.top_k if s.temperature else 1, min_p=s.min_p,
                           repeat_penalty=s.repeat_penalty, frequency_penalty=s.frequency_penalty,
                           presence_penalty=s.presence_penalty,
                           grammar=None if s.json_schema is None else _grammar(s.json_schema))
        try:
            for tok in gen:
                if is_eog(self._vocab, tok):
                    finish = "stop"
                    break
                produced += 1
                held += decoder.decode(llm.detokenize([tok], special=False))
                cuts = [c for c in (_find_stop(held, s.stop),
                                    _blank_line_after_text(held, answered) if blank else None)
                        if c is not None]
                if cuts:
                    held, finish = held[:min(cuts)], "stop"
                    break
                safe = len(held) - (longest_stop - 1) if longest_stop else len(held)
                if blank:
                    safe = min(safe, _open_blank_line(held))
                if safe > 0:
                    answered = answered or bool(held[:safe].strip())
                    yield Chunk(text=held[:safe])
                    held = held[safe:]
                if produced >= budget:
                    break
        finally:
            gen.close()
        held += decoder.decode(b"", final=True)
        if held:
            yield Chunk(text=held)
        yield Chunk(finish_reason=finish, prompt_tokens=len(tokens), completion_tokens=produced,
                    cached_tokens=cached)

    def _resume(self, tokens: list[int]) -> int:
        """Put the context in the state that shares most of `tokens` (the one it holds, or one
        the prompt cache kept) and return how many prompt tokens need no computing. The context
        it leaves is kept first, when a later turn of its conversation could use it."""
        llm = self._llm
        current = llm.input_ids[: llm.n_tokens].tolist()
        here = _common_prefix(current, tokens)
        cache = self.prompt_cache
        if cache is None:
            return here
        if len(current) - here >= PromptCache.MIN_TOKENS:  # this request would overwrite it
            cache.put(tuple(current), llm.save_state())  # (which may evict the oldest states)
        key, there = cache.best(tokens)
        if key is not None and there > here + PromptCache.MIN_TOKENS // 2:
            llm.load_state(cache.take(key))
            return there
        return here

    @property
    def n_vocab(self) -> int:
        return self._llm.n_vocab()

    def _decode(self, tokens: list[int], n_past: int, first: int,
                n_batch: int = 128) -> Iterator[tuple[int, np.ndarray]]:
        """Decode `tokens` after the first `n_past` cached ones, in batches of `n_batch`.

        Yields (i, rows): rows[k] are the logits after tokens[: i + k + 1], for every
        i + k >= first. Only those positions ask llama.cpp for logits, and each batch's rows
        are a view of llama.cpp's output buffer: valid until the next step of the iterator.
        """
        import numpy as np

        llm, lib = self._llm, self._lib
        if n_past + len(tokens) > self.info.n_ctx:
            raise ContextOverflow(n_past + len(tokens), self.info.n_ctx)
        n_batch = max(1, min(n_batch, llm.n_batch))
        if self._batch is None:
            self._batch = lib.llama_batch_init(llm.n_batch, 0, 1)
        batch, vocab = self._batch, llm.n_vocab()
        lib.llama_memory_seq_rm(lib.llama_get_memory(llm.ctx), -1, n_past, -1)
        llm.n_tokens = n_past
        for start in range(0, len(tokens), n_batch):
            part = tokens[start:start + n_batch]
            wanted = 0
            for j, tok in enumerate(part):
                batch.token[j] = tok
                batch.pos[j] = n_past + start + j
                batch.n_seq_id[j] = 1
                batch.seq_id[j][0] = 0
                batch.logits[j] = start + j >= first
                wanted += start + j >= first
            batch.n_tokens = len(part)
            rc = lib.llama_decode(llm.ctx, batch)
            if rc != 0:
                raise LeerooError(f"llama.cpp could not evaluate {len(part)} tokens (code {rc}). "
                                  f"{last_log()}")
            llm.input_ids[llm.n_tokens:llm.n_tokens + len(part)] = part
            llm.n_tokens += len(part)
            if wanted:
                rows = np.ctypeslib.as_array(lib.llama_get_logits(llm.ctx), shape=(wanted, vocab))
                yield max(start, first), rows

    def next_token_logits(self, tokens: list[int], first: int = 0,
                          n_batch: int = 128) -> Iterator[tuple[int, np.ndarray]]:
        """Evaluate `tokens` from an empty cache and stream next-token logits, batch by batch.

        Yields (i, rows) with rows[k] the float32 logits predicting tokens[i + k + 1] (the
        last row predicts past the end), for positions from `first` on. A batch holds at most
        `n_batch` x vocabulary floats, so a 262k vocabulary never needs a tokens x vocabulary
        matrix; rows are valid until the next step (copy what you keep).
        """
        return self._decode(list(tokens), 0, first, n_batch)

    def loglikelihoods(self, context: str, continuations: list[str]) -> list[float]:
        """Log-probability of each continuation after `context` (multiple-choice scoring).

        The context is evaluated once; each continuation reuses its KV cache and is scored in
        one batch (the last context token and the continuation but its last token).
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
            # Reuse the cached prefix, but always decode the last context token with the
            # continuation: the same batch whatever was scored before, so the same numbers
            # (llama.cpp's kernels, hence its rounding, depend on the batch size).
            last = max(split - 1, 0)
            reuse = min(_common_prefix(list(llm.input_ids[: llm.n_tokens]), full[:last]), last)
            for _ in self._decode(full[reuse:last], reuse, first=last - reuse):
                pass
            total = 0.0
            for i, rows in self._decode(full[last:-1], last, first=0):
                rows = rows.astype(np.float64)
                top = rows.max(axis=1, keepdims=True)
                lse = np.log(np.exp(rows - top).sum(axis=1)) + top[:, 0]
                targets = full[last + i + 1: last + i + 1 + len(rows)]
                total += float((rows[np.arange(len(rows)), targets] - lse).sum())
            out.append(total)
        return out

    def close(self) -> None:
        llm = self.__dict__.pop("_llm", None)
        batch, self._batch = getattr(self, "_batch", None), None
        if batch is not None:
            self._lib.llama_batch_free(batch)
        if llm is not None:
            llm.close()


def _quantize_child(src: str, dst: str, ftype: int, allow_requantize: bool, embed_type: int) -> None:
    """Runs in a child process (see quantize.quantize_file); exit code 0 on success."""
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
    """Quantization names llama.cpp's quantizer accepts, with their ftype codes (in a process
    that has llama.cpp; quantize.quant_types asks one)."""
    import llama_cpp

    return {n.removeprefix("LLAMA_FTYPE_MOSTLY_"): getattr(llama_cpp, n)
            for n in dir(llama_cpp) if n.startswith("LLAMA_FTYPE_MOSTLY_")}
