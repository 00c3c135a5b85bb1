"""Write tiny llama-architecture GGUF experts: random weights, a byte vocabulary, a chat template.

llama.cpp loads one in milliseconds, so tests run the real inference path on several distinct
experts (distinct seeds give distinct answers) without any model download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, TokenType

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def write_tiny_llama(
    path: str | Path,
    seed: int = 0,
    n_embd: int = 64,
    n_layers: int = 2,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    n_ff: int = 128,
    n_ctx_train: int = 512,
    name: str | None = None,
    f16: bool = False,
    chat_template: str | None = None,
    metadata: dict[str, int | str] | None = None,
    extra_tokens: list[str] | None = None,
) -> Path:
    """Write a small random llama model whose vocabulary is <unk>, <s>, </s> and 256 bytes
    (and `extra_tokens`, which make it another tokenizer)."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    tokens += [t.encode() for t in extra_tokens or []]
    types += [TokenType.NORMAL] * len(extra_tokens or [])
    n_vocab = len(tokens)
    head_dim = n_embd // n_heads
    w = GGUFWriter(str(path), "llama")
    w.add_name(name or f"tiny-llama-{seed}")
    w.add_context_length(n_ctx_train)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_heads)
    w.add_head_count_kv(n_kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(LlamaFileType.MOSTLY_F16 if f16 else LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE if chat_template is None else chat_template)
    for key, value in (metadata or {}).items():  # e.g. FIM token ids, a pooling type
        (w.add_uint32 if isinstance(value, int) else w.add_string)(key, value)

    def tensor(name: str, *shape: int, scale: float = 0.08, norm: bool = False) -> None:
        data = (
            np.ones(shape, dtype=np.float32)
            if norm
            else (rng.standard_normal(shape) * scale).astype(np.float32)
        )
        if f16 and not norm and len(shape) == 2:
            w.add_tensor(name, data.astype(np.float16), raw_dtype=GGMLQuantizationType.F16)
        else:
            w.add_tensor(name, data)

    tensor("token_embd.weight", n_vocab, n_embd, scale=0.5)
    tensor("output_norm.weight", n_embd, norm=True)
    tensor("output.weight", n_vocab, n_embd, scale=0.5)
    for i in range(n_layers):
        tensor(f"blk.{i}.attn_norm.weight", n_embd, norm=True)
        tensor(f"blk.{i}.attn_q.weight", n_embd, n_embd)
        tensor(f"blk.{i}.attn_k.weight", n_kv_heads * head_dim, n_embd)
        tensor(f"blk.{i}.attn_v.weight", n_kv_heads * head_dim, n_embd)
        tensor(f"blk.{i}.attn_output.weight", n_embd, n_embd)
        tensor(f"blk.{i}.ffn_norm.weight", n_embd, norm=True)
        tensor(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
