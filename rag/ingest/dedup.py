"""Near-duplicate detection: syndicated copies of one story are grouped by MinHash over word shingles.

Two texts whose 5-word shingle sets have an estimated Jaccard similarity of at least ``THRESHOLD`` are in
one group. Wire copies with a changed headline or a few edited words score well above it; separate
write-ups of the same event (different wording throughout) score near zero.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

NUM_PERM = 128
SHINGLE_WORDS = 5
THRESHOLD = 0.7
_SEED = 7
_SCHEME = "affine32"
_WORD = re.compile(r"\w+")


def signature(text: str, blocks: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> bytes:
    """A MinHash signature of the prose of ``text`` (its indexed blocks only, so chrome does not count)."""
    from datasketch import MinHash

    words = [w.lower() for a, b in blocks for w in _WORD.findall(text[a:b])]
    shingles = {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(max(1, len(words) - SHINGLE_WORDS + 1))}
    minhash = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME)
    minhash.update_batch([s.encode("utf-8") for s in shingles])
    return minhash.hashvalues.astype(np.uint64).tobytes()


# Locality-sensitive hashing of signatures: 14 bands of 9 values each, datasketch's choice for this threshold
# and size (it weighs missed and false candidates alike). Two texts share a band with probability 1 - (1 - s^9)^14
# at Jaccard similarity s: 0.999 at 0.9, 0.87 at 0.8, 0.44 at 0.7, 0.03 at 0.5. Wire copies score above 0.9.
# Each band is kept as one 64-bit key (the band's values and its number mixed), so the catalog can store and
# look keys up.
BANDS, ROWS = 14, 9
# The multipliers are fixed bytes (SHA-256 of their names), not a random stream, so that keys stored by one
# version are found by the next.
_MIX = np.frombuffer(b"".join(hashlib.sha256(f"rag band multipliers {i}".encode()).digest() for i in range(32)),
                     dtype="<u8")[: BANDS * ROWS].reshape(BANDS, ROWS).astype(np.uint64) | np.uint64(1)


def band_keys(signature: bytes) -> list[int]:
    """The signature's band keys (signed 64-bit, as SQLite stores integers); none for an empty signature."""
    values = np.frombuffer(signature, dtype=np.uint64)
    if values.size != NUM_PERM:
        return []
    # uint64 arithmetic wraps: a multiply-and-add hash of each band's values, its band number added.
    mixed = (values[: BANDS * ROWS].reshape(BANDS, ROWS) * _MIX).sum(axis=1, dtype=np.uint64)
    mixed += np.arange(BANDS, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return mixed.view(np.int64).tolist()


def similar(one: bytes, other: bytes) -> bool:
    """Whether two signatures estimate a Jaccard similarity of at least ``THRESHOLD``."""
    a, b = np.frombuffer(one, dtype=np.uint64), np.frombuffer(other, dtype=np.uint64)
    return bool(a.size == b.size == NUM_PERM and np.count_nonzero(a == b) / NUM_PERM >= THRESHOLD)


def group(signatures: dict[str, bytes]) -> dict[str, str]:
    """Map each key to its group's key (the smallest key of the group); singletons map to themselves. Two keys
    are linked when their signatures share a band key and are :func:`similar`; a group is what links connect."""
    buckets: dict[int, list[str]] = {}
    for key in sorted(signatures):
        for band in band_keys(signatures[key]):
            buckets.setdefault(band, []).append(key)
    parent = {key: key for key in signatures}
    for members in buckets.values():
        for i, key in enumerate(members):
            for other in members[i + 1:]:
                if root(parent, key) != root(parent, other) and similar(signatures[key], signatures[other]):
                    join(parent, key, other)
    return {key: root(parent, key) for key in signatures}


def root(parent: dict[str, str], key: str) -> str:
    """The key naming ``key``'s group in the forest ``parent`` (each key to its parent; a root to itself)."""
    while parent[key] != key:
        parent[key] = parent[parent[key]]
        key = parent[key]
    return key


def join(parent: dict[str, str], one: str, other: str) -> None:
    """Merge the groups of two keys in ``parent``; the merged group is named by the smaller of their names."""
    a, b = root(parent, one), root(parent, other)
    if a != b:
        parent[max(a, b)] = min(a, b)
