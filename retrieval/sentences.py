"""How close each sentence of the top passages is to a question, by the embedding model.

An English question shares almost no words with the Vietnamese sentence that answers it, so the
words cannot pick that sentence out of its passage; the model can. Sentences are embedded as
passages on first use and kept for the most recent few thousand, since the same top passages come
back for related questions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from newsqa.index.embedding.embedder import Embedder, VectorCache

CACHE_SENTENCES = 8192


class SentenceSimilarity:
    def __init__(self, embedder: Embedder, cache_size: int = CACHE_SENTENCES) -> None:
        self.embedder = embedder
        self._cache = VectorCache(cache_size)

    def __call__(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """Cosine of the question with each sentence."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        query = self.embedder.encode_queries([question])[0]  # the embedder keeps recent questions
        return np.stack(self._cache.encode(sentences, self.embedder.encode_passages)) @ query
