"""bm25s' Lucene BM25 score matrix, built with a few numpy passes instead of per-document Python.

`bm25s.BM25.index` counts terms with a `Counter` per document, document frequencies with a set
intersection per document and scores each document in its own numpy call: 6.8 s of a 13.6 s
rebuild of 10k passages (both fields, passages and articles) went there, and a rebuild that
embeds nothing new is all fixed cost. Here one sort of (token, document) keys gives the term
frequencies already in the matrix's column order, and the scores take three array operations.

The result is the `bm25s.BM25` that `index` would have produced, to the bit: the same postings in
the same order, the same float32 scores (every operation mirrors bm25s' own, in float64 where it
computes in float64, with the IDF from `math.log` as bm25s takes it), saved and loaded by bm25s.
Only the vocabulary's numbering differs: bm25s numbers tokens in a `set`'s iteration order (it
changes with the process's hash seed), this numbers them in order of first appearance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain

import bm25s
import numpy as np

EMPTY_TOKEN = ""  # bm25s adds it to the vocabulary, past the matrix's columns, for empty queries


def token_ids(docs: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(every token's id, in document order; each document's length; token → id, numbered in
    order of first appearance)."""
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    # dict.fromkeys and map run their loops in C: ~3x faster than a Python loop over 4M tokens.
    vocab = {token: i for i, token in enumerate(dict.fromkeys(chain.from_iterable(docs)))}
    ids = np.fromiter(map(vocab.__getitem__, chain.from_iterable(docs)), dtype=np.int64, count=int(lengths.sum()))
    return ids, lengths, vocab


def retriever_from_ids(
    ids: np.ndarray, doc_of_token: np.ndarray, lengths: np.ndarray, vocab: dict[str, int], k1: float, b: float
) -> bm25s.BM25:
    """The BM25 over documents whose tokens are `ids`, token i in document `doc_of_token[i]` (in
    any order), with `lengths` tokens per document."""
    n_docs, n_vocab = len(lengths), len(vocab)
    retriever = bm25s.BM25(k1=k1, b=b)  # method and IDF "lucene", float32 scores, int32 rows
    # Token-major keys sort into CSC order: columns by token, rows ascending within each.
    keys, tf = np.unique(ids * max(n_docs, 1) + doc_of_token, return_counts=True)
    cols, rows = np.divmod(keys, max(n_docs, 1))
    df = np.bincount(cols, minlength=n_vocab)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])

    # bm25s: idf = math.log(1 + (N - df + 0.5) / (df + 0.5)) per token, stored as float32.
    distinct_df, which = np.unique(df, return_inverse=True)
    idf_of_df = np.array([math.log(1 + (n_docs - int(d) + 0.5) / (int(d) + 0.5)) for d in distinct_df])
    idf = idf_of_df.astype(retriever.dtype)[which]
    # bm25s: tf / (k1 * ((1 - b) + b * l_d / l_avg) + tf) in float64, times the float32 idf.
    # (With no tokens at all there are no postings, and the norm is never read.)
    l_avg = lengths.mean() if lengths.sum() else np.float64(1)
    norm = k1 * ((1 - b) + b * lengths / l_avg)
    tf64 = tf.astype(np.float64)
    data = (idf[cols].astype(np.float64) * (tf64 / (norm[rows] + tf64))).astype(retriever.dtype)

    vocabulary = dict(vocab)
    vocabulary.setdefault(EMPTY_TOKEN, max(vocabulary.values(), default=-1) + 1)
    retriever.scores = {
        "data": data,
        "indices": rows.astype(retriever.int_dtype),
        "indptr": indptr,
        "num_docs": n_docs,
    }
    retriever.vocab_dict = vocabulary
    retriever.unique_token_ids_set = set(vocabulary.values())
    retriever.nonoccurrence_array = None  # only BM25L and BM25+ have one
    return retriever


def build_retriever(docs: Sequence[Sequence[str]], k1: float, b: float) -> bm25s.BM25:
    """What `bm25s.BM25(k1=k1, b=b).index(docs)` builds (its vocabulary numbered differently)."""
    ids, lengths, vocab = token_ids(docs)
    return retriever_from_ids(ids, np.repeat(np.arange(len(docs), dtype=np.int64), lengths), lengths, vocab, k1, b)
