"""Loading FLAME files: official pickles without chumpy, our .npz, and bad files."""

from __future__ import annotations

import io
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from facesmith.inference.errors import ModelFileError
from facesmith.inference.flame import safe_pickle
from facesmith.inference.flame.io import load_flame, save_model_npz
from facesmith.inference.flame.model import make_model, model_arrays


def test_official_pickle_with_chumpy_objects_loads(tmp_path, tiny_arrays, write_official_pickle):
    path = write_official_pickle(tmp_path / "generic_model.pkl", tiny_arrays)
    assert "chumpy" not in sys.modules
    assert b"chumpy.ch" in path.read_bytes() and b"scipy.sparse" in path.read_bytes()

    model = load_flame(path)

    assert model.description == "FLAME 2020"
    # Zero padding to the official 300 + 100 width is trimmed away.
    assert (model.n_shape, model.n_expr) == (tiny_arrays["shapedirs"].shape[2], tiny_arrays["exprdirs"].shape[2])
    for name in ("v_template", "shapedirs", "exprdirs", "posedirs", "j_regressor", "lbs_weights", "faces", "parents"):
        np.testing.assert_allclose(getattr(model, name), tiny_arrays[name], err_msg=name)


def test_foreign_class_in_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "flame2023.pkl"
    path.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))

    with pytest.raises(ModelFileError, match=r"flame2023\.pkl.*refusing to load class (posix|os|nt)\.system"):
        load_flame(path)
    assert not marker.exists()


def test_restricted_unpickler_refuses_builtins_eval():
    payload = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        safe_pickle.loads(payload)


def test_sparse_matrix_state_converts_to_dense():
    import scipy.sparse

    dense = np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]])
    for matrix in (scipy.sparse.csc_matrix(dense), scipy.sparse.csr_matrix(dense)):
        np.testing.assert_array_equal(safe_pickle.to_numpy(safe_pickle.loads(pickle.dumps(matrix))), dense)


def test_npz_round_trip(tmp_path, tiny_model):
    path = save_model_npz(tiny_model, tmp_path / "m.npz")
    loaded = load_flame(path)
    for name, arr in model_arrays(tiny_model).items():
        np.testing.assert_allclose(getattr(loaded, name), arr, rtol=1e-6, atol=1e-7, err_msg=name)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp file left beside it


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 150, 120)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.pkl", b"", "file is empty"),
        ("photo.pkl", _jpeg_bytes(), "is a JPEG image, not a FLAME model"),
        ("notes.pkl", b"hello, this is text", "unknown file type"),
        ("list.pkl", pickle.dumps([1, 2, 3], protocol=2), "holds a list, expected a FLAME dict"),
        ("partial.pkl", pickle.dumps({"v_template": np.zeros((3, 3))}, protocol=2), "missing key 'shapedirs'"),
    ],
)
def test_bad_model_files_name_file_and_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=reason) as err:
        load_flame(path)
    assert str(path) in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="file not found"):
        load_flame(tmp_path / "nope.pkl")
    with pytest.raises(ModelFileError, match="is a folder"):
        load_flame(tmp_path)


def test_truncated_pickle(tmp_path, tiny_arrays, write_official_pickle):
    path = write_official_pickle(tmp_path / "generic_model.pkl", tiny_arrays)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt pickle"):
        load_flame(path)


def test_truncated_npz(tmp_path, tiny_model):
    path = save_model_npz(tiny_model, tmp_path / "m.npz")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ModelFileError, match="truncated or corrupt .npz"):
        load_flame(path)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda a: a.update(posedirs=a["posedirs"][:, :, :30]), r"'posedirs' has shape \(60, 3, 30\)"),
        (lambda a: a.update(lbs_weights=a["lbs_weights"][:-1]), r"'lbs_weights' has shape \(59, 5\)"),
        (lambda a: a.update(faces=a["faces"] + 1000), "'faces' indices out of range"),
        (lambda a: a.update(faces=a["faces"].astype(float)), "'faces' has dtype float64, expected integer"),
        (lambda a: a["v_template"].__setitem__((0, 0), np.nan), "'v_template' contains NaN"),
        (lambda a: a.update(parents=np.array([-1, 0, 3, 1, 1])), "not a tree rooted at joint 0"),
        (lambda a: a.pop("j_regressor"), "missing array 'j_regressor'"),
    ],
)
def test_wrong_shapes_and_values_in_npz(tmp_path, tiny_arrays, change, reason):
    change(tiny_arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, meta=np.array('{"format": "facesmith-flame-1"}'), **tiny_arrays)
    with pytest.raises(ModelFileError, match=reason):
        load_flame(path)


def test_wrong_shapes_in_official_pickle(tmp_path, tiny_arrays, write_official_pickle):
    tiny_arrays["lbs_weights"] = tiny_arrays["lbs_weights"][:, :4]
    path = write_official_pickle(tmp_path / "flame2023.pkl", tiny_arrays)
    with pytest.raises(ModelFileError, match=r"flame2023\.pkl: 'lbs_weights' has shape \(60, 4\)"):
        load_flame(path)


def test_npz_without_meta_or_with_object_arrays(tmp_path, tiny_arrays):
    plain = tmp_path / "plain.npz"
    np.savez(plain, **tiny_arrays)
    with pytest.raises(ModelFileError, match="no 'meta' entry"):
        load_flame(plain)
    objects = tmp_path / "objects.npz"
    np.savez(objects, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFileError, match=r"'meta' holds Python objects \(dtype object\)"):
        load_flame(objects)


def test_object_array_in_npz_is_named_not_called_corrupt(tmp_path, tiny_arrays):
    tiny_arrays["shapedirs"] = np.array([{"a": 1}] * 3, dtype=object)
    path = tmp_path / "objects.npz"
    np.savez(path, meta=np.array('{"format": "facesmith-flame-1"}'), **tiny_arrays)
    with pytest.raises(
        ModelFileError, match=r"objects\.npz: 'shapedirs' holds Python objects \(dtype object\), not numbers$"
    ):
        load_flame(path)


def test_short_v_template_is_blamed_not_shapedirs(tmp_path, tiny_arrays):
    tiny_arrays["v_template"] = tiny_arrays["v_template"][:57]
    path = tmp_path / "short.npz"
    np.savez(path, meta=np.array('{"format": "facesmith-flame-1"}'), **tiny_arrays)
    with pytest.raises(ModelFileError) as err:
        load_flame(path)
    assert err.value.reason == (
        "'v_template' has shape (57, 3) (57 vertices), but shapedirs, exprdirs, posedirs, j_regressor, lbs_weights have 60"
    )


def test_pickle_bomb_of_shared_lists_is_refused(tmp_path):
    # 60 levels of [a, a]: a few hundred bytes that expand to 2**60 values in np.asarray or print.
    bomb = [1.0]
    for _ in range(60):
        bomb = [bomb, bomb]
    raw = {
        "shapedirs": np.zeros((2, 3, 301), np.float32),
        "kintree_table": np.zeros((2, 5), np.uint32),
        "v_template": bomb,
    }
    path = tmp_path / "flame2023.pkl"
    path.write_bytes(pickle.dumps(raw, protocol=2))
    assert path.stat().st_size < 15_000
    with pytest.raises(
        ModelFileError, match=r"'v_template' refused: nested lists expand to more than 50,000,000 values"
    ):
        load_flame(path)


def _npy(arr: np.ndarray | None = None, header: dict | None = None, payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    if header is None:
        np.save(buf, arr)
    else:
        np.lib.format.write_array_header_1_0(buf, header)
        buf.write(payload)
    return buf.getvalue()


def test_npz_declaring_a_huge_array_is_refused_before_allocating(tmp_path, tiny_arrays):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.npy", _npy(np.array('{"format": "facesmith-flame-1"}')))
        for name, arr in tiny_arrays.items():
            if name != "shapedirs":
                archive.writestr(f"{name}.npy", _npy(arr))
        # 60 * 3 * 1e8 float32 would be 72 GB; the entry holds 16 bytes.
        header = {"descr": "<f4", "fortran_order": False, "shape": (60, 3, 100_000_000)}
        archive.writestr("shapedirs.npy", _npy(header=header, payload=bytes(16)))
    with pytest.raises(ModelFileError, match=r"'shapedirs' declares shape \(60, 3, 100000000\): 18,000,000,000 values"):
        load_flame(path)


def test_make_model_keeps_metadata(tiny_arrays):
    model = make_model(tiny_arrays, "x", source="x", description="d", is_development=True)
    assert model.info()["development_model"] is True
    assert model.info()["landmarks_mediapipe"] == 7


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: os.mkfifo(p), "is a named pipe"),  # opening and reading it would wait for ever
        (lambda p: p.symlink_to("/dev/zero"), "is a character device"),  # reading it would never end
        (lambda p: os.truncate(p.write_bytes(b"") or p, 20 * 2**30), "more than the"),  # sparse 20 GB
        (lambda p: p.symlink_to(p), "symbolic link loop"),
    ],
    ids=["fifo", "device", "sparse_20gb", "link_loop"],
)
def test_model_files_are_checked_before_reading(tmp_path, make, reason):
    path = tmp_path / "flame2023.pkl"
    make(path)
    with pytest.raises(ModelFileError, match=reason) as err:
        load_flame(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("vt 0.5 abc", "line 2:"),
        ("vt 0.5", "two finite numbers"),
        ("f 1/1 2/x 3/3", "line 2:"),
        ("f 0/1 1/1 2/2", "positive"),
    ],
)
def test_malformed_template_obj_beside_the_model_is_one_error(tmp_path, tiny_arrays, line, reason):
    from facesmith.inference.flame.paths import ModelChoice, load_model

    model_path = save_model_npz(make_model(tiny_arrays, "tiny"), tmp_path / "tiny.npz")
    (tmp_path / "head_template.obj").write_text(f"vt 0.1 0.2\n{line}\nf 1/1 2/1 3/1\n")
    with pytest.raises(ModelFileError, match=reason) as err:
        load_model(ModelChoice(model_path, "--flame"))
    assert "head_template.obj" in str(err.value)


@pytest.mark.parametrize(
    ("method", "flag"), [(99, 0), (14, 0), (0, 1)], ids=["unknown_method", "not_lzma", "encrypted"]
)
def test_odd_zip_entries_are_a_model_file_error(tmp_path, tiny_model, method, flag):
    """Found by fuzzing: zipfile raises NotImplementedError (an unknown compression method), LZMAError (deflated data
    claimed LZMA) and RuntimeError (an encrypted entry), none of them BadZipFile."""
    data = bytearray(save_model_npz(tiny_model, tmp_path / "m.npz").read_bytes())
    for mark, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers: flags, then the method
        i = data.find(mark)
        while i >= 0:
            data[i + at : i + at + 4] = flag.to_bytes(2, "little") + method.to_bytes(2, "little")
            i = data.find(mark, i + 4)
    (tmp_path / "odd.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="truncated or corrupt .npz"):
        load_flame(tmp_path / "odd.npz")
