"""The llama.cpp backend on tiny real GGUF experts (no mocks)."""

import pytest

from leeroo_local.backends.base import Sampling
from leeroo_local.backends.llama_cpp import LlamaCppModel, transcript
from leeroo_local.backends.quantize import quantize_file
from leeroo_local.errors import ContextOverflow, CorruptModel, LeerooError
from leeroo_local.gguf_info import read_gguf
from tiny_gguf import write_tiny_llama


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    model = LlamaCppModel(tiny_dir / "tiny-1.gguf", n_ctx=256, n_threads=1)
    yield model
    model.close()


def text_of(chunks):
    return "".join(c.text for c in chunks)


def test_chat_streams_with_exact_token_counts(tiny):
    chunks = list(tiny.chat([{"role": "user", "content": "hello"}], Sampling(max_tokens=7, seed=3)))
    last = chunks[-1]
    assert last.finish_reason in ("length", "stop")
    assert 1 <= last.completion_tokens <= 7
    assert last.prompt_tokens == len(tiny.render_chat([{"role": "user", "content": "hello"}])[0])
    assert tiny.info.chat_template


def test_same_seed_same_text_and_experts_differ(tiny, tiny_dir):
    msgs = [{"role": "user", "content": "hi"}]
    a = text_of(tiny.chat(msgs, Sampling(max_tokens=12, seed=5)))
    b = text_of(tiny.chat(msgs, Sampling(max_tokens=12, seed=5)))
    assert a == b
    other = LlamaCppModel(tiny_dir / "tiny-2.gguf", n_ctx=256, n_threads=1)
    try:
        c = text_of(other.chat(msgs, Sampling(max_tokens=12, seed=5)))
    finally:
        other.close()
    assert c != a


def test_stop_string_ends_generation(tiny):
    free = text_of(tiny.complete("abc", Sampling(max_tokens=30, seed=9, temperature=0)))
    assert len(free) > 3
    stop = free[2:4]
    cut = list(tiny.complete("abc", Sampling(max_tokens=30, seed=9, temperature=0, stop=[stop])))
    assert stop not in text_of(cut)
    assert cut[-1].finish_reason == "stop"


def test_prompt_over_the_context_is_refused_with_counts(tiny):
    with pytest.raises(ContextOverflow) as err:
        tiny.complete("x" * 400, Sampling())
    assert err.value.prompt_tokens > err.value.n_ctx == 256
    assert "256" in str(err.value)


def test_loglikelihoods_rank_consistently(tiny):
    ctx = "The answer is"
    scores = tiny.loglikelihoods(ctx, [" A", " B", " C"])
    again = tiny.loglikelihoods(ctx, [" C", " A"])
    assert all(s < 0 for s in scores)
    assert again[0] == pytest.approx(scores[2], abs=1e-4)
    assert again[1] == pytest.approx(scores[0], abs=1e-4)


def test_corrupt_file_is_a_clear_error(tmp_path, tiny_dir):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes((tiny_dir / "tiny-1.gguf").read_bytes()[:5000])
    with pytest.raises(CorruptModel, match="truncated"):
        LlamaCppModel(bad)


def test_quantize_f32_to_q8_0_shrinks_and_loads(tmp_path):
    src = write_tiny_llama(tmp_path / "f32.gguf", n_embd=256, n_ff=512, seed=4)
    dst = quantize_file(src, tmp_path / "q8.gguf", "Q8_0")
    assert dst.stat().st_size < src.stat().st_size / 2
    assert read_gguf(dst).file_type == "Q8_0"
    model = LlamaCppModel(dst, n_ctx=128, n_threads=1)
    assert list(model.complete("a", Sampling(max_tokens=2)))[-1].completion_tokens >= 1
    model.close()
    with pytest.raises(LeerooError, match="requantiz"):
        quantize_file(dst, tmp_path / "q4.gguf", "Q4_0")
    assert not (tmp_path / "q4.gguf").exists()


def test_transcript_for_base_models():
    text = transcript([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert text == "System: Be brief.\nUser: Hi\nAssistant:"


# -- the prompt cache: conversations that alternate on one expert keep their KV state ----------

def _conversation(topic: str, turns: int) -> list[dict]:
    out = []
    for i in range(turns):
        out += [{"role": "user", "content": f"{topic} part {i}: " + "the log of the day " * 6},
                {"role": "assistant", "content": f"noted {i}"}]
    return out + [{"role": "user", "content": f"what about {topic}?"}]


GREEDY8 = Sampling(max_tokens=8, temperature=0.0, seed=1)


def test_alternating_conversations_resume_from_the_prompt_cache(tiny_dir):
    cached = LlamaCppModel(tiny_dir / "tiny-1.gguf", n_ctx=1024, n_threads=1,
                           prompt_cache_bytes=64 << 20)
    plain = LlamaCppModel(tiny_dir / "tiny-1.gguf", n_ctx=1024, n_threads=1)
    try:
        a, b = _conversation("sea", 3), _conversation("bread", 3)
        for model in (cached, plain):
            list(model.chat(a, GREEDY8))
            list(model.chat(b, GREEDY8))  # a's context is overwritten (and kept by the cache)
        a_next = a + [{"role": "assistant", "content": "fine"}, {"role": "user", "content": "and?"}]
        with_cache, without = (list(m.chat(a_next, GREEDY8)) for m in (cached, plain))
        prompt = with_cache[-1].prompt_tokens
        assert with_cache[-1].cached_tokens >= len(cached.render_chat(a)[0]) - 8 > 100
        assert without[-1].cached_tokens < 40  # only what the two conversations share
        assert text_of(with_cache) == text_of(without)  # the same answer, resumed or computed
        assert with_cache[-1].prompt_tokens == without[-1].prompt_tokens == prompt
        assert len(cached.prompt_cache) >= 1
    finally:
        cached.close()
        plain.close()


def test_the_prompt_cache_stays_within_its_capacity(tiny_dir):
    model = LlamaCppModel(tiny_dir / "tiny-2.gguf", n_ctx=1024, n_threads=1,
                          prompt_cache_bytes=1 << 20)
    try:
        for topic in ("a", "b", "c", "d", "e", "f"):
            list(model.chat(_conversation(topic, 3), GREEDY8))
        assert model.prompt_cache.size_bytes <= 1 << 20
    finally:
        model.close()


def test_a_cache_that_holds_one_state_evicts_it_safely(tiny_dir):
    model = LlamaCppModel(tiny_dir / "tiny-3.gguf", n_ctx=1024, n_threads=1,
                          prompt_cache_bytes=1 << 30)
    try:
        a, b = _conversation("sea", 3), _conversation("bread", 3)
        list(model.chat(a, GREEDY8))
        one = model._llm.save_state().llama_state_size
        model.prompt_cache.capacity_bytes = int(one * 1.5)  # room for one state, not two
        list(model.chat(b, GREEDY8))  # a's state is kept
        again = list(model.chat(a, GREEDY8))  # b's is kept, a's evicted while it is taken
        assert again[-1].finish_reason and len(model.prompt_cache) == 1
    finally:
        model.close()
