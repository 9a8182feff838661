"""Embedding cache keyed by (model, passage text hash), so a rebuild embeds only new passages."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A SQLite file of float32 vectors. Survives index rebuilds (it lives beside the builds)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            # Only a cache: set the damaged file aside (for inspection) and embed again.
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
            self.path.replace(aside)
            log.warning("The embedding cache %s is damaged (%s); it was moved to %s and passages are embedded again.",
                        self.path, exc, aside.name)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, hash TEXT NOT NULL, "
                "vector BLOB NOT NULL, PRIMARY KEY (model, hash))"
            )
            db.commit()
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(verdict)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

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
                # A damaged row (wrong length, NaN or infinite values) is re-embedded, not trusted.
                if vector.shape == (dimension,) and np.isfinite(vector).all():
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
