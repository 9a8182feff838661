"""BM25 over Vietnamese syllables and syllable bigrams, in an accented and a folded field.

bm25s does the scoring; we supply the tokens (see `index.text`), because its default tokenizer
is English: it drops one-letter syllables such as "ở" and applies English stop words.
A question typed without any diacritic is matched against the folded field, where "nga yeu cau"
meets "Nga yêu cầu"; an accented question uses the accented field, where "bảo" and "bão" differ.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from index.text import has_diacritics, tokens_accented, tokens_folded

ACCENTED = "accented"
FOLDED = "folded"
FIELDS = (ACCENTED, FOLDED)
_TOKENIZERS = {ACCENTED: tokens_accented, FOLDED: tokens_folded}

# bm25s logs progress bars and warnings at import/load; we report progress ourselves.
logging.getLogger("bm25s").setLevel(logging.ERROR)


@dataclass(frozen=True)
class LexicalQuery:
    field: str
    tokens: list[str]


def analyse_query(question: str) -> LexicalQuery:
    """Pick the field for a question: folded only when the user typed no diacritic at all."""
    field = ACCENTED if has_diacritics(question) else FOLDED
    return LexicalQuery(field, _TOKENIZERS[field](question))


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


class LexicalIndex:
    """Two BM25 fields over the same passages, row i = passage i."""

    def __init__(self, fields: dict[str, bm25s.BM25]) -> None:
        self._fields = {name: _Field(r) for name, r in fields.items()}

    @classmethod
    def build(cls, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        fields = {}
        for name in FIELDS:
            tokenize = _TOKENIZERS[name]
            retriever = bm25s.BM25(k1=k1, b=b)
            retriever.index([tokenize(t) for t in texts], show_progress=False)
            fields[name] = retriever
        return cls(fields)

    def save(self, folder: Path) -> list[Path]:
        written = []
        for name, field in self._fields.items():
            target = Path(folder) / name
            field.retriever.save(str(target), show_progress=False)
            written.extend(sorted(p for p in target.iterdir() if p.is_file()))
        return written

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> LexicalIndex:
        return cls(
            {
                name: bm25s.BM25.load(str(Path(folder) / name), mmap=mmap, show_progress=False)
                for name in FIELDS
            }
        )

    def scores(self, query: LexicalQuery) -> np.ndarray:
        """BM25 score of every passage for the query (zeros where nothing matches)."""
        field = self._fields[query.field]
        known = [t for t in query.tokens if t in field.vocab]
        if not known:
            return np.zeros(int(field.retriever.scores["num_docs"]), dtype=np.float32)
        return np.asarray(field.retriever.get_scores(known), dtype=np.float32)

    def known_fraction(self, folded_terms: Sequence[str]) -> float:
        """Share of the (folded) words that occur in the corpus: a cheap signal of the query's language."""
        if not folded_terms:
            return 0.0
        vocab = self._fields[FOLDED].vocab
        return sum(1 for t in folded_terms if t in vocab) / len(folded_terms)

    def idf_of(self, field: str, tokens: Sequence[str]) -> dict[str, float]:
        f = self._fields[field]
        return {t: f.token_idf(t) for t in tokens}
