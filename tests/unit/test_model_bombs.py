"""Hostile model files (pickle and .npy bombs): each is refused with a one-line reason, before it can
hang or allocate. Without the guards, most of these hang, crash or allocate gigabytes."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from facesmith.inference.errors import ModelFileError
from facesmith.inference.flame import safe_pickle
from facesmith.inference.flame.io import load_flame
from facesmith.inference.flame.topology import read_npy_array

_RECONSTRUCT = np.empty(0).__reduce__()[0]


class _Array:
    """Pickles exactly as numpy pickles an array, but with a state of the test's choosing."""

    def __init__(self, shape: tuple, dtype: str, data: object) -> None:
        self.state = (1, shape, np.dtype(dtype), False, data)

    def __reduce__(self):
        return (_RECONSTRUCT, (np.ndarray, (0,), b"b"), self.state)


def _tuple_key_bomb() -> bytes:
    # {t: 2} with t = (t', t') 60 deep: inserting the key hashes 2**60 tuples inside the unpickler.
    # (Building that dict here would hang too, so the pickle of t is wrapped in MARK ... DICT by hand.)
    t: object = 1
    for _ in range(60):
        t = (t, t)
    return b"\x80\x02(" + pickle.dumps(t, protocol=2)[2:-1] + b"K\x02d."


def _reused_payload() -> bytes:
    # One 1 MB latin1 string shared by 1000 arrays: numpy copies it for each one (1 GB from a 1 MB file).
    payload = "\0" * 2**20
    return pickle.dumps([_Array((2**17,), "f8", payload) for _ in range(1000)], protocol=2)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_tuple_key_bomb(), r"refusing: nested tuples expand to more than 10,000 values \(a pickle bomb\?\)"),
        # LONG_BINPUT 0xFFFFFFF0: the unpickler would grow its memo table to 32 GB.
        (b"\x80\x02]r\xf0\xff\xff\xff.", r"refusing memo index 4,294,967,280 after 2 operations"),
        (
            pickle.dumps({"v_template": _Array((10**6, 10**6), "f8", b"12345678")}, protocol=2),
            r"numpy array declares shape \(1000000, 1000000\) \(8,000,000,000,000 bytes\) but holds 8",
        ),
        # numpy 1.26 allocates 800 MB for this, then crashes reading past the one-item list.
        (
            pickle.dumps({"v_template": _Array((10**8,), "O", [1])}, protocol=2),
            r"numpy array declares shape \(100000000,\) \(800,000,000 bytes\) but holds 8",
        ),
        (_reused_payload(), r"arrays and byte strings add up to more than twice the file's size"),
    ],
    ids=["tuple-key", "memo-index", "array-shape", "object-array", "reused-payload"],
)
def test_pickle_bombs_are_refused(tmp_path, payload, reason):
    path = tmp_path / "flame2023.pkl"
    path.write_bytes(payload)
    with pytest.raises(ModelFileError, match=reason) as err:
        load_flame(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_foreign_class_is_refused_in_every_protocol(protocol):
    # Protocol 4+ names classes with STACK_GLOBAL, older ones with GLOBAL: both are checked up front.
    payload = pickle.dumps([("x", 1), os.system], protocol=protocol)
    with pytest.raises(safe_pickle.RefusedError, match=r"refusing to load class (posix|os|nt)\.system"):
        safe_pickle.loads(payload)


def test_values_that_cannot_be_arrays_are_refused():
    cycle: list = [1.0]
    cycle.append(cycle)
    with pytest.raises(ValueError, match="contains itself"):
        safe_pickle.to_numpy(safe_pickle.loads(pickle.dumps(cycle, protocol=2)))

    import scipy.sparse

    matrix = scipy.sparse.csc_matrix(np.eye(3))
    matrix._shape = (10**6, 10**6)  # dense would be 8 TB
    with pytest.raises(ValueError, match="too large to make dense"):
        safe_pickle.to_numpy(safe_pickle.loads(pickle.dumps(matrix, protocol=2)))


def test_npy_declaring_more_data_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "l_eyelid.npy"
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (5023, 3, 1000)})
        f.write(bytes(64))
    with pytest.raises(ModelFileError, match=r"declares shape \(5023, 3, 1000\) \(120,552,000 bytes\) but holds 64"):
        read_npy_array(path)
