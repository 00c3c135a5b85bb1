"""The Python WordPiece (policy/embed.py) cuts words exactly as the `tokenizers` library cuts
them with the encoder's tokenizer.json: a policy trained with either routes the same."""

import pytest

from leeroo_local.store.outcomes import load_matrix
from leeroo_local.policy.embed import Pieces, WordPiece
from leeroo_local.policy.features import raw_tokens
from leeroo_local.policy.recipe import DEFAULT_EMBEDDER
from leeroo_local.policy.train import texts_of

tokenizers = pytest.importorskip("tokenizers")
TOKENIZER = DEFAULT_EMBEDDER / "tokenizer.json"

MIXED = [
    "Quelle est la capitale de l'Allemagne? Élève, réponds!",
    "Welche Aussage über die Größe ist richtig? Straße, Ärger",
    "光合作用发生在细胞的哪个部分？化学反应",
    "次のうち、正しいものはどれですか。カタカナ",
    "Какой из следующих ответов верен? Ёлка",
    "ข้อใดถูกต้อง",
    "İstanbul ΣΟΦΙΑ ﬁnance naïve café \u200bzero\u200dwidth \x1ccontrol \ufffd ½ × ∑ 𠀀𠀁",
    "x^2 + y_1 = 10,000,000 $5 #3 @home 'quote' \"dq\" <tag> {brace} [b] (p) ~ ` |",
    "a" * 150 + " supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def reference(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


@pytest.fixture(scope="module")
def both():
    tok = tokenizers.Tokenizer.from_file(str(TOKENIZER))
    tok.no_padding()
    tok.no_truncation()
    return tok, WordPiece(TOKENIZER)


@pytest.mark.parametrize("text", MIXED)
def test_same_ids_as_the_tokenizers_library_on_mixed_text(both, text):
    tok, ours = both
    assert ours.encode(text) == reference(tok, text)
    assert ours.encode(text)  # and it is not trivially empty


def test_same_ids_on_every_word_of_the_shipped_questions(both):
    tok, ours = both
    _, texts = texts_of(load_matrix(None))
    words = sorted({w for t in texts for w in raw_tokens(t)})
    assert len(words) > 20_000
    batch = tok.encode_batch(words, add_special_tokens=False)
    differ = [w for w, enc in zip(words, batch) if ours.encode(w) != enc.ids]
    assert differ == []


def test_pieces_of_a_prompt_are_its_words_pieces(both):
    tok, _ = both
    pieces = Pieces(TOKENIZER)
    text = "Which enzyme unwinds DNA? 解旋酶"
    expected = [i for w in raw_tokens(text) for i in reference(tok, w)]
    assert pieces(text).tolist() == expected


def test_a_file_that_is_not_a_wordpiece_tokenizer_is_a_clear_error(tmp_path):
    from leeroo_local.errors import DataError

    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"model": {"type": "BPE", "vocab": {}}}')
    with pytest.raises(DataError, match="not WordPiece"):
        WordPiece(bad)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="cannot load the subword tokenizer"):
        WordPiece(bad)
