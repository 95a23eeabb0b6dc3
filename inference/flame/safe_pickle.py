"""A restricted unpickler for FLAME files: numpy arrays, chumpy and scipy.sparse objects only.

Official FLAME pickles were written with chumpy (`chumpy.ch.Ch`) and scipy (`csc_matrix`) objects.
We never import those packages: their classes map to inert stand-ins that only record their state,
which is then converted to numpy. Any other class is refused, so a pickle cannot run code.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np


class RefusedError(pickle.UnpicklingError):
    """The pickle names a class or codec outside the allowed set."""


class PickledObject:
    """Inert stand-in for a chumpy or scipy object: keeps the pickled state, runs nothing."""

    kind = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class ChumpyObject(PickledObject):
    kind = "chumpy"


class SparseObject(PickledObject):
    kind = "scipy.sparse"
    format = ""


class CscObject(SparseObject):
    format = "csc"


class CsrObject(SparseObject):
    format = "csr"


_SPARSE = {"csc_matrix": CscObject, "csc_array": CscObject, "csr_matrix": CsrObject, "csr_array": CsrObject}


# Taken from numpy's own pickling so this works whether numpy calls its core `core` or `_core`.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_SCALAR = np.float64(0).__reduce__()[0]
_ALLOWED: dict[tuple[str, str], Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _RECONSTRUCT
    _ALLOWED[(_mod, "scalar")] = _SCALAR
for _mod in ("numpy", "numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "ndarray")] = np.ndarray
    _ALLOWED[(_mod, "dtype")] = np.dtype
# Python 2 pickles (FLAME 2020) name these through copy_reg / __builtin__.
for _mod in ("copy_reg", "copyreg"):
    _ALLOWED[(_mod, "_reconstructor")] = __import__("copyreg")._reconstructor
for _mod in ("__builtin__", "builtins"):
    _ALLOWED[(_mod, "object")] = object


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 protocol-2 pickles store bytes as _codecs.encode(text, "latin1").
    if encoding.replace("-", "").lower() not in ("latin1", "utf8"):
        raise RefusedError(f"refusing codec {encoding!r}")
    return text.encode(encoding)


_ALLOWED[("_codecs", "encode")] = _latin1_encode


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "chumpy" or module.startswith("chumpy."):
            return ChumpyObject
        if module.startswith("scipy.sparse") and name in _SPARSE:
            return _SPARSE[name]
        raise RefusedError(f"refusing to load class {module}.{name}")


def loads(data: bytes) -> Any:
    """Unpickle `data` allowing only numpy arrays and chumpy/scipy stand-ins.

    latin1 decodes Python 2 str payloads (numpy buffers) byte for byte.
    """
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def load_npy(data: bytes) -> Any:
    """Read a .npy file, allowing an object payload only through the restricted unpickler."""
    buf = io.BytesIO(data)
    version = np.lib.format.read_magic(buf)
    shape, fortran, dtype = np.lib.format._read_array_header(buf, version)
    if dtype.hasobject:
        obj = loads(buf.read())
        return obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj
    buf.seek(0)
    return np.load(buf, allow_pickle=False)


def to_numpy(obj: Any) -> np.ndarray:
    """Convert a loaded value (array, list, chumpy or sparse stand-in) to a dense numpy array."""
    if isinstance(obj, ChumpyObject):
        state = obj.state if isinstance(obj.state, dict) else {}
        if "x" not in state:
            raise ValueError("chumpy object without a plain value ('x')")
        return to_numpy(state["x"])
    if isinstance(obj, SparseObject):
        return _sparse_to_dense(obj)
    arr = np.asarray(obj)
    if arr.dtype.hasobject:
        raise ValueError(f"holds Python objects, not numbers (dtype {arr.dtype})")
    return arr


def _sparse_to_dense(obj: SparseObject) -> np.ndarray:
    state = obj.state if isinstance(obj.state, dict) else {}
    shape = state.get("_shape", state.get("shape"))
    data, indices, indptr = (np.asarray(state.get(k)) for k in ("data", "indices", "indptr"))
    fmt = obj.format
    if shape is None or indptr.ndim != 1 or fmt not in ("csc", "csr"):
        raise ValueError(f"unsupported sparse matrix (format {fmt!r})")
    rows, cols = int(shape[0]), int(shape[1])
    major = cols if fmt == "csc" else rows
    if indptr.shape[0] != major + 1 or indptr[-1] != data.shape[0] or indices.shape != data.shape:
        raise ValueError("inconsistent sparse matrix arrays")
    dense = np.zeros((rows, cols), dtype=np.float64)
    lengths = np.diff(indptr)
    majors = np.repeat(np.arange(major), lengths)
    if indices.size and (indices.min() < 0 or indices.max() >= (rows if fmt == "csc" else cols)):
        raise ValueError("sparse matrix indices out of range")
    if fmt == "csc":
        dense[indices, majors] = data
    else:
        dense[majors, indices] = data
    return dense
