"""The tables a loaded build reads its rows from: passages and articles parsed on demand from their
JSON-lines files, and the id → row maps over them.

A build of more than `LoadOptions.lazy_rows` passages (index/loader.py) is opened, not parsed: parsing 1M JSON
rows takes seconds, reading the offsets of them (rows.npz) takes milliseconds.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import numpy as np

from newsqa.index.models import Article, Passage

T = TypeVar("T")


class JsonlRows(Sequence[T], Generic[T]):
    """Rows of a JSON-lines file, parsed when asked for (row i is bytes offsets[i]:offsets[i+1])."""

    def __init__(self, path: Path, offsets: np.ndarray, parse: Callable[[dict[str, Any]], T]) -> None:
        self._offsets = offsets
        self._parse = parse
        with open(path, "rb") as fh:
            # The mapping outlives the file descriptor, and the file being unlinked by pruning.
            self._data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if offsets[-1] else b""

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._parse(json.loads(self._data[int(self._offsets[i]) : int(self._offsets[i + 1])]))

    def __iter__(self) -> Iterator[T]:
        for i in range(len(self)):
            yield self[i]


class ArticleTable(Mapping[str, Article]):
    """article id → Article, read from articles.jsonl on access."""

    def __init__(self, rows: JsonlRows[Article], ids: Sequence[str]) -> None:
        self._rows = rows
        self.positions = {article_id: i for i, article_id in enumerate(ids)}

    def __getitem__(self, article_id: str) -> Article:
        return self._rows[self.positions[article_id]]

    def __contains__(self, article_id: object) -> bool:  # Mapping's would read the article from disk
        return article_id in self.positions

    def __iter__(self) -> Iterator[str]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


class LazyRowMap(Mapping[str, int]):
    """passage id → row, built on first use (iterating 1M passages is not free, and rarely needed)."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self._passages = passages
        self._map: dict[str, int] | None = None

    def _built(self) -> dict[str, int]:
        if self._map is None:
            self._map = {p.passage_id: i for i, p in enumerate(self._passages)}
        return self._map

    def __getitem__(self, passage_id: str) -> int:
        return self._built()[passage_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._passages)



class ArticleRows(Mapping[str, range]):
    """article id → the rows of its passages, from the article positions an ArticleTable already
    holds: a dict of ranges over 271k articles cost a quarter of a second of a 1M-passage load."""

    def __init__(self, positions: Mapping[str, int], starts: np.ndarray) -> None:
        self._positions = positions
        self._starts = starts

    @classmethod
    def of(cls, positions: Mapping[str, int], starts: np.ndarray) -> ArticleRows | None:
        return cls(positions, starts) if len(starts) == len(positions) + 1 else None

    def __getitem__(self, article_id: str) -> range:
        i = self._positions[article_id]
        return range(int(self._starts[i]), int(self._starts[i + 1]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)

