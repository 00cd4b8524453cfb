"""Merkle trees as RFC 9162 (Certificate Transparency 2.0) defines them; pure, no I/O.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), and a tree of n leaves is
split at the largest power of two below n, so any CT tooling recomputes the same roots.
"""

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already hashed leaves (RFC 9162 §2.1.1)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def append(frontier: Sequence[bytes], size: int, leaf: bytes) -> list[bytes]:
    """The roots of the perfect subtrees of a tree of `size + 1` leaves, from those of `size`.

    A tree of n leaves is the perfect subtrees given by the bits of n, largest first; a sealer
    keeps only these (at most 64 hashes) to extend the tree without reading every leaf again.
    """
    result = [*frontier, leaf]
    merged = size
    while merged & 1:
        right = result.pop()
        left = result.pop()
        result.append(node_hash(left, right))
        merged >>= 1
    return result


def root_of_frontier(frontier: Sequence[bytes]) -> bytes:
    """MTH of the tree whose perfect subtrees these are (folded from the right)."""
    if not frontier:
        return EMPTY_ROOT
    acc = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        acc = node_hash(subtree, acc)
    return acc


def consistency_proof(leaves: Sequence[bytes], first_size: int) -> list[bytes]:
    """PROOF(m, D[n]) that the tree of the first m leaves is a prefix (RFC 9162 §2.1.4.1)."""
    if not 0 < first_size <= len(leaves):
        raise ValueError("the first tree must be non-empty and no larger than the second")
    return _subproof(first_size, leaves, complete=True)


def _subproof(m: int, leaves: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete=complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], complete=False), root(leaves[:k])]


def verify_consistency(
    first_size: int, second_size: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof between two tree heads (RFC 9162 §2.1.4.2)."""
    if first_size > second_size or first_size < 1:
        return False
    if first_size == second_size:
        return not proof and first_root == second_root
    path = list(proof)
    if first_size & (first_size - 1) == 0:  # an exact power of two
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
