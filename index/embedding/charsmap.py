"""A per-character normalisation map compiled into SentencePiece's `precompiled_charsmap` format.

Hugging Face tokenizers' `Precompiled` normaliser reads that format: a little-endian u32 giving the
size in bytes of a Darts-clone double-array trie over the UTF-8 bytes of each source character,
the trie's u32 units, then the replacement strings, each ended by NUL. A trie key's leaf value is
the byte offset of its replacement. Building it ourselves keeps the embedded model's tokenizer
exactly the map its weights were trained with, without sentencepiece's trainer.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

_LEAF_FLAG = 1 << 31  # a unit holding a value: its label can never equal a byte
_HAS_LEAF = 1 << 8
_MAX_OFFSET = 1 << 21  # larger offsets need Darts' extended encoding, which a small map never does


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None


def compile_charsmap(mapping: Mapping[str, str]) -> bytes:
    """`mapping` from single characters to their replacements ('' deletes) as precompiled bytes."""
    normalized = bytearray()
    root = _Node()
    for source in sorted(mapping):
        if len(source) != 1 or source == "\0" or "\0" in mapping[source]:
            raise ValueError(f"a charsmap maps single non-NUL characters to text without NUL, not {source!r}")
        node = root
        for byte in source.encode("utf-8"):
            node = node.children.setdefault(byte, _Node())
        node.value = len(normalized)
        normalized += mapping[source].encode("utf-8") + b"\0"
    units = _double_array(root)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(normalized)


def _double_array(root: _Node) -> list[int]:
    units: list[int] = [0] * 256
    used = bytearray(256)
    used[0] = 1  # the root
    next_free = 1
    pending: list[tuple[int, _Node]] = [(0, root)]
    while pending:
        position, node = pending.pop()
        labels = sorted(node.children) + ([0] if node.value is not None else [])
        if not labels:
            continue
        base = next_free
        while True:
            slots = [base ^ label for label in labels]
            top = max(slots)
            if top >= len(used):
                grow = (top | 255) + 1 - len(used)
                used.extend(bytes(grow))
                units.extend([0] * grow)
            if base != position and not any(used[s] for s in slots):
                break
            base += 1
        offset = position ^ base
        if offset >= _MAX_OFFSET:
            raise ValueError("charsmap too large for the compact double-array encoding")
        units[position] |= offset << 10 | (_HAS_LEAF if node.value is not None else 0)
        for label in labels:
            used[base ^ label] = 1
        if node.value is not None:
            units[base] = node.value | _LEAF_FLAG
        for label, child in node.children.items():
            units[base ^ label] = label
            pending.append((base ^ label, child))
        while next_free < len(used) and used[next_free]:
            next_free += 1
    # A lookup XORs any byte into a node's base: every slot of a used 256-block must exist.
    size = (len(units) + 255) // 256 * 256
    return units + [0] * (size - len(units))


def lookup(charsmap: bytes, char: str) -> str | None:
    """The replacement for one character in compiled bytes (None: left as it is); for tests."""
    (trie_size,) = struct.unpack_from("<I", charsmap, 0)
    units = struct.unpack_from(f"<{trie_size // 4}I", charsmap, 4)
    normalized = charsmap[4 + trie_size :]
    position = units[0] >> 10
    value = None
    for byte in char.encode("utf-8"):
        position ^= byte
        unit = units[position]
        if unit & (_LEAF_FLAG | 0xFF) != byte:
            return None
        position ^= unit >> 10
        if unit & _HAS_LEAF:
            value = units[position] & (_LEAF_FLAG - 1)
    if value is None:
        return None
    return normalized[value : normalized.index(b"\0", value)].decode("utf-8")
