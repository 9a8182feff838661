"""How close each sentence of the top passages is to a question, by the embedding model.

An English question shares almost no words with the Vietnamese sentence that answers it, so the
words cannot pick that sentence out of its passage; the model can. Sentences are embedded as
passages on first use and kept for the most recent few thousand, since the same top passages come
back for related questions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from index.embedder import Embedder

CACHE_SENTENCES = 8192


class SentenceSimilarity:
    def __init__(self, embedder: Embedder, cache_size: int = CACHE_SENTENCES) -> None:
        self.embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def __call__(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """Cosine of the question with each sentence."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        query = self.embedder.encode_queries([question])[0]  # the embedder keeps recent questions
        with self._lock:
            known = {s: self._cache[s] for s in sentences if s in self._cache}
            for s in known:
                self._cache.move_to_end(s)
        missing = [s for s in dict.fromkeys(sentences) if s not in known]
        if missing:
            vectors = self.embedder.encode_passages(missing)
            with self._lock:
                for sentence, vector in zip(missing, vectors):
                    known[sentence] = vector
                    self._cache[sentence] = vector
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return np.stack([known[s] for s in sentences]) @ query
