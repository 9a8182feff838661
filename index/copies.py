"""Passages whose vectors are bit-for-bit the same go into the vector index once.

News corpora repeat themselves: a wire story republished by several outlets, a boilerplate
paragraph under every article of a series. Identical vectors in an HNSW graph crowd each other's
neighbour lists (a node with 200 copies links mostly to its copies), which costs recall for every
other question; on the 1M-passage benchmark corpus, where 14% of the vectors are copies, indexing
each vector once raised recall@10 at the same search effort (docs/performance.md). The index
then answers in vectors, and `CopiesExpanded` turns each vector found back into every passage row
that has it, so a search returns what a search over all rows would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

COPIES = "copies.npz"


@dataclass(frozen=True)
class Copies:
    """Rows grouped by identical vector. Group g (= position in the distinct-vector index) holds
    rows[starts[g]:starts[g + 1]], ascending; groups are numbered by their first row."""

    starts: np.ndarray  # (groups + 1,) int64
    rows: np.ndarray  # (passages,) int64

    @property
    def groups(self) -> int:
        return len(self.starts) - 1

    @property
    def first_rows(self) -> np.ndarray:
        """The row each distinct vector is taken from (its lowest), in group order."""
        return self.rows[self.starts[:-1]]

    def group_of_rows(self) -> np.ndarray:
        """The group of every row."""
        out = np.empty(len(self.rows), dtype=np.int64)
        out[self.rows] = np.repeat(np.arange(self.groups, dtype=np.int64), np.diff(self.starts))
        return out

    @classmethod
    def find(cls, vectors: np.ndarray) -> Copies | None:
        """The groups of identical rows of `vectors`, or None when every row is distinct."""
        n = len(vectors)
        if n < 2:
            return None
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = data.view(np.dtype((np.void, data.shape[1] * data.itemsize))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        if len(first) == n:
            return None
        # Number the groups by first row, so the distinct vectors keep the passages' order.
        number = np.empty(len(first), dtype=np.int64)
        number[np.argsort(first, kind="stable")] = np.arange(len(first))
        group_of_row = number[inverse.ravel()]
        rows = np.argsort(group_of_row, kind="stable").astype(np.int64)  # stable: rows ascend within a group
        starts = np.concatenate([[0], np.cumsum(np.bincount(group_of_row, minlength=len(first)))]).astype(np.int64)
        return cls(starts, rows)

    def save(self, path: Path) -> None:
        with open(path, "wb") as f:
            np.savez(f, starts=self.starts, rows=self.rows)

    @classmethod
    def load(cls, path: Path) -> Copies:
        with np.load(path, allow_pickle=False) as data:
            starts, rows = data["starts"].astype(np.int64), data["rows"].astype(np.int64)
        n = len(rows)
        valid = (
            len(starts) >= 2
            and starts[0] == 0
            and starts[-1] == n
            and bool(np.all(np.diff(starts) > 0))
            and int(rows.min()) >= 0
            and int(rows.max()) < n
            and bool(np.all(np.bincount(rows, minlength=n) == 1))  # every row exactly once
        )
        if not valid:
            raise ValueError(f"{path.name} does not describe groups of passage rows")
        return cls(starts, rows)


class CopiesExpanded:
    """A vector index over distinct vectors that searches like one over every passage row."""

    def __init__(self, index: Any, copies: Copies) -> None:
        if int(index.ntotal) != copies.groups:
            raise ValueError("the vector index and its copies file disagree in size")
        self.index = index
        self.copies = copies
        self.ntotal = len(copies.rows)

    def search(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        # n distinct vectors stand for at least n rows.
        scores, ids = self.index.search(queries, min(n, int(self.index.ntotal)))
        out_scores = np.full((len(queries), n), -np.inf, dtype=np.float32)
        out_rows = np.full((len(queries), n), -1, dtype=np.int64)
        starts, rows = self.copies.starts, self.copies.rows
        for q in range(len(queries)):
            valid = ids[q] >= 0
            found = ids[q][valid]
            sizes = starts[found + 1] - starts[found]
            take = min(n, int(sizes.sum()))
            if not take:
                continue
            # Each group's rows, in the order the index ranked the groups, cut at n.
            offsets = np.repeat(starts[found] - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
            out_rows[q, :take] = rows[offsets[:take] + np.arange(take)]
            out_scores[q, :take] = np.repeat(scores[q][valid], sizes)[:take]
        return out_scores, out_rows
