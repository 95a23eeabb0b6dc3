"""ICT-FaceKit read from its own FaceXModel/ folder (OBJ + vertex_indices.json) gives the npz pack's arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facesmith.training.ict_source import load_ict, source_sha256

from ..conftest import SHARED

ICT = SHARED / "ict" / "ict_facekit.npz"
pytestmark = pytest.mark.skipif(not ICT.is_file(), reason=f"needs {ICT}")


def write_obj(path, vertices, faces=None) -> None:
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    if faces is not None:
        lines += ["f " + " ".join(f"{i + 1}/{i + 1}" for i in face if i >= 0) for face in faces]
    path.write_text("\n".join(lines) + "\n")


def face_x_model(folder, pack, names, extra):
    """A FaceXModel/ folder with some of the pack's expressions (and one the SDK does not load)."""
    folder.mkdir()
    neutral = pack["neutral"].astype(np.float64)
    write_obj(folder / "generic_neutral_mesh.obj", neutral, pack["faces"])
    all_names = list(pack["expression_names"])
    for name in [*names, extra]:
        write_obj(folder / f"{name}.obj", neutral + pack["expression_deltas"][all_names.index(name)])
    config = {"expressions": names, "idx_to_landmark_verts": pack["landmarks_multipie68"].tolist()}
    (folder / "vertex_indices.json").write_text(json.dumps(config))


def test_the_folder_gives_the_packs_arrays(tmp_path):
    pack = load_ict(ICT)
    folder = tmp_path / "FaceXModel"
    face_x_model(folder, pack, ["jawOpen", "eyeBlink_L"], "PupilDilate_L")
    got = load_ict(folder)
    np.testing.assert_allclose(got["neutral"], pack["neutral"], atol=1e-5)
    np.testing.assert_array_equal(got["faces"], pack["faces"])
    assert list(got["expression_names"]) == ["jawOpen", "eyeBlink_L", "PupilDilate_L"]
    assert got["expression_in_config"].tolist() == [True, True, False]
    names = list(pack["expression_names"])
    for k, name in enumerate(got["expression_names"]):
        np.testing.assert_allclose(got["expression_deltas"][k], pack["expression_deltas"][names.index(name)], atol=2e-3)
    for key in ("part_vertex_ranges", "part_face_ranges", "tooth_vertex_ranges", "landmarks_multipie68"):
        np.testing.assert_array_equal(got[key], pack[key], err_msg=key)
    assert list(got["part_names"]) == list(pack["part_names"])
    assert len(source_sha256(folder)) == 64 and source_sha256(folder) != source_sha256(ICT)
