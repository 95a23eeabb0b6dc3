"""Shared fixtures: a tiny random FLAME for fast tests, a procedural FLAME-structured head (tiny_flame.py) for
the tests that need a real surface, and the development model when ../shared exists."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facesmith.inference.flame.io import save_model_npz
from facesmith.inference.flame.model import FlameModel, make_model

from .photos import make_bad_inputs, portrait
from .tiny_flame import procedural_flame

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACESMITH_SHARED", REPO.parent / "shared"))
FLAME_PARTS = SHARED / "flame"
FACES, BAD_INPUTS = SHARED / "data" / "faces", SHARED / "data" / "bad_inputs"


def make_tiny_arrays(seed: int = 0, n_vertices: int = 60, n_faces: int = 80, n_shape: int = 6, n_expr: int = 4) -> dict:
    """A small random model with FLAME's structure (5 joints, 36 pose features, embeddings)."""
    rng = np.random.default_rng(seed)
    weights = rng.random((n_vertices, 5)) ** 4  # peaked, like real skinning weights
    weights[: n_vertices // 3, 2] = 0.0  # a third of the head never follows the jaw
    weights /= weights.sum(1, keepdims=True)
    regressor = rng.random((5, n_vertices))
    regressor /= regressor.sum(1, keepdims=True)
    faces = np.array([rng.choice(n_vertices, 3, replace=False) for _ in range(n_faces)])
    bary = rng.random((51, 3))
    dyn_bary = rng.random((79, 17, 3))
    mp_bary = rng.random((7, 3))
    return {
        "v_template": rng.normal(scale=0.1, size=(n_vertices, 3)),
        "shapedirs": rng.normal(scale=0.01, size=(n_vertices, 3, n_shape)),
        "exprdirs": rng.normal(scale=0.01, size=(n_vertices, 3, n_expr)),
        "posedirs": rng.normal(scale=0.001, size=(n_vertices, 3, 36)),
        "j_regressor": regressor,
        "lbs_weights": weights,
        "parents": np.array([-1, 0, 1, 1, 1]),
        "faces": faces,
        "uv_coords": rng.random((n_vertices + 5, 2)),
        "uv_faces": rng.integers(0, n_vertices + 5, size=(n_faces, 3)),
        "static_lmk_faces": rng.integers(0, n_faces, 51),
        "static_lmk_bary": bary / bary.sum(1, keepdims=True),
        "dynamic_lmk_faces": rng.integers(0, n_faces, (79, 17)),
        "dynamic_lmk_bary": dyn_bary / dyn_bary.sum(-1, keepdims=True),
        "mediapipe_lmk_faces": rng.integers(0, n_faces, 7),
        "mediapipe_lmk_bary": mp_bary / mp_bary.sum(1, keepdims=True),
        "mediapipe_lmk_indices": rng.choice(478, 7, replace=False),
    }


@pytest.fixture
def tiny_arrays() -> dict:
    return make_tiny_arrays()


@pytest.fixture
def tiny_model(tiny_arrays: dict) -> FlameModel:
    return make_model(tiny_arrays, "tiny", source="tiny")


@pytest.fixture(scope="session")
def dev_model() -> FlameModel:
    if not FLAME_PARTS.is_dir():
        pytest.skip(f"FLAME parts not found at {FLAME_PARTS} (set FACESMITH_SHARED)")
    from facesmith.inference.flame.dev_model import build_dev_model

    return build_dev_model(FLAME_PARTS)


@pytest.fixture(scope="session")
def procedural_model() -> FlameModel:
    """FLAME's structure on a procedural head (tests/tiny_flame.py): no ../shared needed."""
    return procedural_flame()


@pytest.fixture(scope="session", params=["procedural", "dev"])
def flame_model(request: pytest.FixtureRequest) -> FlameModel:
    """Each FLAME-structured model in turn: the procedural head always, the development model where
    ../shared has it (skipped otherwise), so tests of generic behaviour run everywhere."""
    return request.getfixturevalue(f"{request.param}_model")


@pytest.fixture(scope="session")
def synth_data(procedural_model, tmp_path_factory) -> tuple[Path, Path]:
    """24 procedural-FLAME renders (96 px, `facesmith synth` shards) and the model as an .npz for --flame."""
    from facesmith.training.synth.engine import Assets, Engine
    from facesmith.training.synth.shards import generate

    root = tmp_path_factory.mktemp("dense")
    rng = np.random.default_rng(0)
    background = (rng.random((80, 120, 3)) * 255).astype(np.uint8)
    albedo = np.full((1, 32, 32, 3), (200, 160, 140), np.uint8)
    engine = Engine(procedural_model, Assets(albedo, None, (background,)), 96)
    generate(engine, 24, 3, root / "synth", workers=1, shard_size=12, log=lambda s: None)
    return root / "synth", save_model_npz(procedural_model, root / "procedural.npz")


@pytest.fixture(scope="session")
def astronaut_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real frontal 512² portrait that ships with scikit-image (tests/photos.py), saved as PNG."""
    path = tmp_path_factory.mktemp("photos") / "astronaut_face.png"
    portrait().save(path)
    return path


@pytest.fixture(scope="session")
def face_photo(astronaut_photo: Path) -> Callable[[str], Path]:
    """face_photo("001_03.jpg"): that portrait of ../shared's London set, or the astronaut's without ../shared."""
    return lambda name: FACES / name if FACES.is_dir() else astronaut_photo


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """../shared/data/bad_inputs, or the same files remade from scikit-image's bundled photos without it."""
    return BAD_INPUTS if BAD_INPUTS.is_dir() else make_bad_inputs(tmp_path_factory.mktemp("bad_inputs"))


class _FakeCh:
    """Stands in for chumpy.ch.Ch when writing test pickles: same module path, same state layout."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self._cache = {"r": None}  # real Ch objects carry caches and graph links beside 'x'
        self._parents = {}


_FakeCh.__module__, _FakeCh.__name__, _FakeCh.__qualname__ = "chumpy.ch", "Ch", "Ch"


def official_layout(arrays: dict, n_shape_total: int = 300, n_expr_total: int = 100) -> dict:
    """The dict an official FLAME pickle holds, bases zero-padded to the official 300 + 100 width."""
    import scipy.sparse

    v = arrays["v_template"].shape[0]
    dirs = np.zeros((v, 3, n_shape_total + n_expr_total))
    dirs[:, :, : arrays["shapedirs"].shape[2]] = arrays["shapedirs"]
    dirs[:, :, n_shape_total : n_shape_total + arrays["exprdirs"].shape[2]] = arrays["exprdirs"]
    kintree = np.array([arrays["parents"], np.arange(5)]).astype(np.int64)
    kintree[kintree < 0] = 4294967295
    return {
        "f": arrays["faces"].astype(np.uint32),
        "v_template": arrays["v_template"],
        "shapedirs": _FakeCh(dirs),
        "posedirs": _FakeCh(arrays["posedirs"]),
        "J_regressor": scipy.sparse.csc_matrix(arrays["j_regressor"]),
        "weights": arrays["lbs_weights"],
        "kintree_table": kintree.astype(np.uint32),
        "J": arrays["j_regressor"] @ arrays["v_template"],
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


@pytest.fixture
def write_official_pickle(monkeypatch: pytest.MonkeyPatch):
    """Returns write(path, arrays): a FLAME-format pickle with chumpy objects and a scipy sparse J_regressor."""
    import pickle
    import sys
    import types

    def write(path: Path, arrays: dict) -> Path:
        chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
        ch.Ch = _FakeCh
        chumpy.ch = ch
        with monkeypatch.context() as m:  # visible only while pickling, as chumpy is absent when loading
            m.setitem(sys.modules, "chumpy", chumpy)
            m.setitem(sys.modules, "chumpy.ch", ch)
            path.write_bytes(pickle.dumps(official_layout(arrays), protocol=2))
        return path

    return write
