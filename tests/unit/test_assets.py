"""assets/ holds only listed files whose hashes match SHA256SUMS."""

from __future__ import annotations

import hashlib

from ..conftest import REPO

ASSETS = REPO / "assets"


def test_every_asset_is_listed_with_its_hash():
    listed = dict(reversed(line.split(maxsplit=1)) for line in (ASSETS / "SHA256SUMS").read_text().splitlines())
    present = {p.name for p in ASSETS.iterdir() if p.name not in ("README.md", "SHA256SUMS")}
    assert present == set(listed) and present
    for name, digest in listed.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name


def test_learned_embedding_loads_for_the_flame_mesh(dev_model):
    from facesmith.inference.landmarks.embedding import load_embedding

    emb = load_embedding(ASSETS / "mediapipe_dense_embedding.npz", dev_model)
    assert len(emb.indices) > 250 and len(set(emb.indices.tolist())) == len(emb.indices)
    assert emb.indices.max() < 468  # never the iris points
    assert abs(emb.bary.sum(axis=1) - 1).max() < 1e-5 and emb.bary.min() >= 0
