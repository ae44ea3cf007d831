"""Near-duplicate detection: syndicated copies of one story are grouped by MinHash over word shingles.

Two texts whose 5-word shingle sets have an estimated Jaccard similarity of at least ``THRESHOLD`` are in
one group. Wire copies with a changed headline or a few edited words score well above it; separate
write-ups of the same event (different wording throughout) score near zero.
"""

from __future__ import annotations

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


def group(signatures: dict[str, bytes]) -> dict[str, str]:
    """Map each key to its group's key (the smallest key of the group); singletons map to themselves."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    hashes = {}
    for key, blob in sorted(signatures.items()):
        hashes[key] = MinHash(
            num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME, hashvalues=np.frombuffer(blob, dtype=np.uint64)
        )
        lsh.insert(key, hashes[key])
    parent = {key: key for key in hashes}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for key, minhash in hashes.items():
        for other in lsh.query(minhash):
            if other != key and minhash.jaccard(hashes[other]) >= THRESHOLD:
                a, b = root(key), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {key: root(key) for key in hashes}
