"""Embedding cache keyed by (model, passage text hash), so a rebuild embeds only new passages."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A SQLite file of float32 vectors. Survives index rebuilds (it lives beside the builds)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, hash TEXT NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, hash))"
        )
        self._db.commit()

    def get_many(self, model: str, hashes: Sequence[str], dimension: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({marks})", [model, *chunk]
            )
            for digest, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (dimension,):  # a damaged row is re-embedded, not trusted
                    found[digest] = vector
        return found

    def put_many(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO vectors (model, hash, vector) VALUES (?, ?, ?)",
            ((model, digest, np.asarray(v, dtype=np.float32).tobytes()) for digest, v in items),
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()
