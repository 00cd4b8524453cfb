"""RFC 9162 hashing held to the Certificate Transparency reference vectors."""

import random

from ssu_common import merkle

# RFC 6962 test vectors (transparency-dev/merkle testonly): leaves and the root of each size.
DATA = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAVES = [merkle.leaf_hash(bytes.fromhex(d)) for d in DATA]
CONSISTENCY = {
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def test_roots_match_the_reference_for_every_size() -> None:
    assert (
        merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    frontier: list[bytes] = []
    for n in range(1, 9):
        assert merkle.root(LEAVES[:n]).hex() == ROOTS[n - 1]
        frontier = merkle.append(frontier, n - 1, LEAVES[n - 1])
        assert merkle.root_of_frontier(frontier).hex() == ROOTS[n - 1]
    assert len(frontier) == 1  # 8 leaves: one perfect subtree


def test_consistency_proofs_match_the_reference_and_verify() -> None:
    for (m, n), expected in CONSISTENCY.items():
        proof = merkle.consistency_proof(LEAVES[:n], m)
        assert [p.hex() for p in proof] == expected
        first, second = bytes.fromhex(ROOTS[m - 1]), bytes.fromhex(ROOTS[n - 1])
        assert merkle.verify_consistency(m, n, first, second, proof)
        assert not merkle.verify_consistency(m, n, second, first, proof)
        tampered = [merkle.leaf_hash(b"x"), *proof[1:]]
        assert not merkle.verify_consistency(m, n, first, second, tampered)


def test_every_pair_of_sizes_is_consistent_and_a_changed_leaf_is_not() -> None:
    rng = random.Random(9162)
    leaves = [merkle.leaf_hash(rng.randbytes(8)) for _ in range(37)]
    for n in range(1, len(leaves) + 1):
        second = merkle.root(leaves[:n])
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(leaves[:n], m)
            assert merkle.verify_consistency(m, n, merkle.root(leaves[:m]), second, proof)
            if m < n:
                forged = [*leaves[: m - 1], merkle.leaf_hash(b"forged")]
                assert not merkle.verify_consistency(m, n, merkle.root(forged), second, proof)
