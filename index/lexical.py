"""BM25 over Vietnamese syllables and syllable bigrams, in an accented and a folded field.

bm25s' Lucene BM25 scores the passages (the matrix built by `index.bm25`, bit-identical to what
bm25s' own `index` builds and ~7x faster; saved and loaded by bm25s); we supply the tokens (see
`index.text`), because its default tokenizer is English: it drops one-letter syllables such as
"ở" and applies English stop words.
A question typed without any diacritic is matched against the folded field, where "nga yeu cau"
meets "Nga yêu cầu"; an accented question uses the accented field, where "bảo" and "bão" differ.

A question's query (`LexicalQuery`) is made by `retrieval.query`. Measured on UIT-ViNewsQA dev
(see docs/quality.md): bigrams count half as much as syllables (MRR@10 +0.9 over equal weight; a
bigram already implies its two syllables). k1/b and the BM25 variant (Lucene, Robertson, BM25+,
BM25L, ATIRE) moved MRR by less than 0.3, so bm25s' Lucene scoring with k1=1.2, b=0.75 stays.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from newsqa.index import bm25
from newsqa.index.text import tokens_accented, tokens_both, tokens_folded

ACCENTED = "accented"
FOLDED = "folded"
FIELDS = (ACCENTED, FOLDED)
_TOKENIZERS = {ACCENTED: tokens_accented, FOLDED: tokens_folded}
# The same two fields over whole articles (a document = all its passages), and which article each
# passage row belongs to. Optional on disk: indexes written before they existed still load.
ARTICLE_DIR = "article"
ARTICLE_ROWS = "article_rows.json"

# bm25s logs progress bars and warnings at import/load; we report progress ourselves.
logging.getLogger("bm25s").setLevel(logging.ERROR)


BIGRAM_WEIGHT = 0.5


@dataclass(frozen=True)
class LexicalQuery:
    field: str
    tokens: list[str]  # syllables (question words removed), then bigrams
    bigrams: int = 0  # how many of `tokens`, at the end, are bigrams
    # Words of an earlier question a follow-up is read with (retrieval/conversation.py), scored
    # at their own lower weight so they steer towards the topic without outvoting the question.
    context: tuple[str, ...] = ()
    context_weight: float = 0.0

    @property
    def groups(self) -> list[tuple[float, list[str]]]:
        """(weight, tokens) pairs whose BM25 scores add up to the query's score."""
        split = len(self.tokens) - self.bigrams
        groups = [(1.0, self.tokens[:split]), (BIGRAM_WEIGHT, self.tokens[split:])]
        if self.context and self.context_weight > 0:
            groups.append((self.context_weight, list(self.context)))
        return groups


VOCAB_FILE = "vocab.index.json"  # bm25s's name for a field's vocabulary


class Vocabularies:
    """bm25s vocabularies parsed once per distinct file content, for the loads that share this.

    Every shard of a sharded build carries the whole corpus's vocabulary (its fields are slices of
    one index), so each shard parsed the same JSON again: 0.29 s of a 0.65 s shard load at 250k
    passages of a 1M corpus, holding the GIL, and one dict per shard in memory. Keyed by the
    file's SHA-256, so a shard whose vocabulary differs still gets its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsed: dict[bytes, Future[tuple[dict[str, int], set[int]]]] = {}

    def read(self, path: Path) -> tuple[dict[str, int], set[int]]:
        """(token → id, the ids) of the vocabulary file at `path`; shared by identical files."""
        raw = path.read_bytes()
        key = hashlib.sha256(raw).digest()
        with self._lock:
            entry = self._parsed.get(key)
            first = entry is None
            if first:
                entry = self._parsed[key] = Future()
        if first:  # the other loads wait for this parse rather than repeat it
            try:
                vocab = bm25s.utils.json_functions.loads(raw)
                entry.set_result((vocab, set(vocab.values())))
            except BaseException as exc:
                entry.set_exception(exc)
        return entry.result()  # type: ignore[union-attr]


def _load_retriever(folder: Path, mmap: bool, vocabularies: Vocabularies | None) -> bm25s.BM25:
    if vocabularies is None:
        return bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False)
    retriever = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False, load_vocab=False)
    retriever.vocab_dict, retriever.unique_token_ids_set = vocabularies.read(folder / VOCAB_FILE)
    return retriever


class _Field:
    def __init__(self, retriever: bm25s.BM25) -> None:
        self.retriever = retriever
        self.vocab: dict[str, int] = retriever.vocab_dict
        n_docs = int(retriever.scores["num_docs"])
        df = np.diff(np.asarray(retriever.scores["indptr"]))
        self.idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
        self.max_idf = float(np.log(1.0 + (n_docs + 0.5) / 0.5))

    def token_idf(self, token: str) -> float:
        idx = self.vocab.get(token)
        return self.max_idf if idx is None else float(self.idf[idx])


def infer_groups(texts: Sequence[str]) -> list[int]:
    """Article number of each passage text, from the title line the build puts first in each.

    `index.build` passes `Passage.embedding_text()` ("title\\ntext") in article order, so a run
    of texts with the same first line is one article. Two neighbouring articles with the same
    headline become one group, which only blurs their article scores together.
    """
    groups: list[int] = []
    previous: str | None = None
    for text in texts:
        head = text.split("\n", 1)[0] if "\n" in text else None  # no title line: its own group
        same = bool(groups) and head is not None and head == previous
        groups.append(groups[-1] if same else (groups[-1] + 1 if groups else 0))
        previous = head
    return groups


def _build_fields(
    tokens: dict[str, list[list[str]]], k1: float, b: float, article_rows: Sequence[int] | None
) -> tuple[dict[str, bm25s.BM25], dict[str, bm25s.BM25] | None]:
    """Each field over the passages and, with `article_rows` (article number of each passage),
    over the articles, a document holding all of its passages' tokens."""
    passages: dict[str, bm25s.BM25] = {}
    articles: dict[str, bm25s.BM25] = {}
    rows = None if article_rows is None else np.asarray(article_rows, dtype=np.int64)
    for name, docs in tokens.items():
        ids, lengths, vocab = bm25.token_ids(docs)
        passage_of_token = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        passages[name] = bm25.retriever_from_ids(ids, passage_of_token, lengths, vocab, k1, b)
        if rows is not None:
            article_lengths = np.bincount(rows, weights=lengths, minlength=int(rows.max(initial=-1)) + 1)
            articles[name] = bm25.retriever_from_ids(
                ids, rows[passage_of_token], article_lengths.astype(np.int64), vocab, k1, b
            )
    return passages, (articles if rows is not None else None)


class LexicalIndex:
    """Two BM25 fields over the same passages, row i = passage i, and the same over articles."""

    def __init__(
        self,
        fields: dict[str, bm25s.BM25],
        article_fields: dict[str, bm25s.BM25] | None = None,
        article_rows: Sequence[int] | None = None,
    ) -> None:
        self._fields = {name: _Field(r) for name, r in fields.items()}
        self._articles = None
        if article_fields and article_rows is not None:
            self._articles = {name: _Field(r) for name, r in article_fields.items()}
            self._article_rows = np.asarray(article_rows, dtype=np.int64)

    @classmethod
    def build(
        cls, texts: Sequence[str], k1: float = 1.2, b: float = 0.75, groups: Sequence[int | str] | None = None
    ) -> LexicalIndex:
        """Index passage texts; `groups` (article of each passage, default: inferred from the
        title line) adds the article fields. An empty `groups` list builds passage fields only."""
        both = [tokens_both(t) for t in texts]
        tokens = {ACCENTED: [a for a, _ in both], FOLDED: [f for _, f in both]}
        del both
        if groups is None:
            groups = infer_groups(texts)
        if not texts or len(groups) != len(texts):
            return cls(_build_fields(tokens, k1, b, None)[0])
        numbers: dict[int | str, int] = {}
        rows = [numbers.setdefault(g, len(numbers)) for g in groups]
        fields, articles = _build_fields(tokens, k1, b, rows)
        return cls(fields, articles, rows)

    @property
    def has_articles(self) -> bool:
        return self._articles is not None

    def save(self, folder: Path) -> list[Path]:
        written = []
        targets = [(Path(folder) / name, field) for name, field in self._fields.items()]
        if self._articles is not None:
            targets += [(Path(folder) / ARTICLE_DIR / name, field) for name, field in self._articles.items()]
        for target, field in targets:
            field.retriever.save(str(target), show_progress=False)
            written.extend(sorted(p for p in target.iterdir() if p.is_file()))
        if self._articles is not None:
            rows_file = Path(folder) / ARTICLE_DIR / ARTICLE_ROWS
            rows_file.write_text(json.dumps(self._article_rows.tolist()), encoding="utf-8")
            written.append(rows_file)
        return written

    @classmethod
    def load(cls, folder: Path, mmap: bool = False, vocabularies: Vocabularies | None = None) -> LexicalIndex:
        """The index saved in `folder`; `vocabularies` shares parsed vocabularies between loads
        (the shards of one build)."""

        def read(base: Path) -> dict[str, bm25s.BM25]:
            return {name: _load_retriever(base / name, mmap, vocabularies) for name in FIELDS}

        folder = Path(folder)
        rows_file = folder / ARTICLE_DIR / ARTICLE_ROWS
        if not rows_file.is_file():
            return cls(read(folder))
        return cls(read(folder), read(folder / ARTICLE_DIR), json.loads(rows_file.read_text(encoding="utf-8")))

    @property
    def size(self) -> int:
        return int(self._fields[ACCENTED].retriever.scores["num_docs"])

    def scores(self, query: LexicalQuery) -> np.ndarray:
        """BM25 score of every passage for the query (zeros where nothing matches)."""
        return _score(self._fields[query.field], query, self.size)

    def article_scores(self, query: LexicalQuery) -> np.ndarray | None:
        """BM25 score of each passage's whole article, or None for an index without article fields."""
        if self._articles is None:
            return None
        field = self._articles[query.field]
        return _score(field, query, int(field.retriever.scores["num_docs"]))[self._article_rows]

    def slice(self, rows: range, article_docs: range | None = None) -> LexicalIndex:
        """The passages `rows` (and the article documents `article_docs`) as an index of their own
        that keeps this index's vocabulary and statistics (IDF, average length): its scores are
        exactly the slice of this index's scores. A shard of a sharded build is one such slice."""
        fields = {name: _slice_retriever(f.retriever, rows) for name, f in self._fields.items()}
        if self._articles is None or article_docs is None:
            return LexicalIndex(fields)
        articles = {name: _slice_retriever(f.retriever, article_docs) for name, f in self._articles.items()}
        article_rows = self._article_rows[rows.start : rows.stop] - article_docs.start
        return LexicalIndex(fields, articles, article_rows)

    def document_frequencies(self, field: str) -> tuple[np.ndarray, int]:
        """(documents containing each vocabulary token, documents) of one passage field."""
        scores = self._fields[field].retriever.scores
        return np.diff(np.asarray(scores["indptr"])), int(scores["num_docs"])

    def vocabulary_of(self, field: str) -> dict[str, int]:
        """token → column of one passage field (the same in every slice of an index)."""
        return self._fields[field].vocab

    def known_fraction(self, folded_terms: Sequence[str]) -> float:
        """Share of the (folded) words that occur in the corpus: a cheap signal of the query's language."""
        if not folded_terms:
            return 0.0
        vocab = self._fields[FOLDED].vocab
        return sum(1 for t in folded_terms if t in vocab) / len(folded_terms)

    def idf_of(self, field: str, tokens: Sequence[str]) -> dict[str, float]:
        f = self._fields[field]
        return {t: f.token_idf(t) for t in tokens}


def _score(field: _Field, query: LexicalQuery, n_docs: int) -> np.ndarray:
    total = np.zeros(n_docs, dtype=np.float32)
    for weight, tokens in query.groups:
        ids = [field.vocab[t] for t in tokens if t in field.vocab]
        if ids and weight:
            total += weight * _postings_sum(field.retriever.scores, ids, n_docs)
    return total


def _postings_sum(scores: dict, ids: Sequence[int], n_docs: int) -> np.ndarray:
    """Each document's sum of the precomputed BM25 scores of tokens `ids` (a token listed twice
    counts twice): what bm25s' `get_scores` computes, to the bit, in the same order.

    bm25s scatter-adds with `np.add.at`, which holds the GIL. scipy's CSC mat-vec kernel runs the
    same loop in C++ with the GIL released, so the question's embedding (ONNX Runtime, a torch
    trace) and FAISS search progress on the other core meanwhile; it is also ~1.8x faster (at 100k
    passages ~200k postings a question: 0.98 vs 1.80 ms). Each token is a one-column matrix whose
    column pointers index straight into the full posting arrays, so nothing is copied."""
    data = np.asarray(scores["data"])
    indices = np.asarray(scores["indices"])
    indptr = np.asarray(scores["indptr"])
    out = np.zeros(n_docs, dtype=np.float32)
    ids = [i for i in ids if i < len(indptr) - 1]  # bm25s' vocabulary holds "" past its columns
    kernel = _csc_matvec()
    if kernel is None or data.dtype != np.float32 or indptr[-1] > np.iinfo(indices.dtype).max:
        for i in ids:  # the kernel needs column pointers of the row indices' type
            np.add.at(out, indices[indptr[i] : indptr[i + 1]], data[indptr[i] : indptr[i + 1]])
        return out
    one = np.ones(1, dtype=np.float32)
    for i in ids:
        kernel(n_docs, 1, np.array([indptr[i], indptr[i + 1]], dtype=indices.dtype), indices, data, one, out)
    return out


@functools.cache
def _csc_matvec():  # -> the kernel, or None where scipy's private module moved
    try:
        from scipy.sparse._sparsetools import csc_matvec
    except ImportError:  # pragma: no cover - a future scipy
        return None
    return csc_matvec


def _slice_retriever(retriever: bm25s.BM25, rows: range) -> bm25s.BM25:
    """A copy of `retriever` over documents `rows` only, scores unchanged (they were computed with
    the whole corpus' statistics). The score matrix is CSC: one column of (doc, score) per token."""
    scores = retriever.scores
    indices = np.asarray(scores["indices"])
    keep = (indices >= rows.start) & (indices < rows.stop)
    kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    part = copy.copy(retriever)
    part.scores = {
        "data": np.asarray(scores["data"])[keep],
        "indices": (indices[keep] - rows.start).astype(indices.dtype),
        "indptr": kept_before[np.asarray(scores["indptr"])].astype(np.asarray(scores["indptr"]).dtype),
        "num_docs": len(rows),
    }
    return part
