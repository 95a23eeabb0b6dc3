"""Load FLAME models: official pickles (FLAME 2020 `generic_model.pkl`, FLAME 2023 `flame2023*.pkl`)
and the project's own `.npz`; save the `.npz`. Every failure names the file and the reason.
"""

from __future__ import annotations

import errno
import io
import json
import lzma
import math
import os
import pickle
import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ..files import atomic_write, open_reason
from . import safe_pickle
from .model import ARRAY_SPECS, FlameModel, check_shapes, make_model, model_arrays

N_SHAPE_OFFICIAL = 300  # official shapedirs hold 300 shape then 100 expression components
NPZ_FORMAT = "facesmith-flame-1"

_MAGIC = {
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"\x93NUMPY": "a single .npy array",
}


MAX_FILE_BYTES = 8 * safe_pickle.MAX_VALUES  # as float64: the most any FLAME file (model or companion) could need


def read_bytes(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """Read a model file, with errors that name it. Its type and size are checked on the opened file before
    reading: a FIFO would block for ever and /dev/zero or a sparse 20 GB file fill the memory."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading waits for a writer without it (it only affects FIFOs and devices,
        # which are refused below before any read).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise ModelFileError(path, _open_reason(path, exc)) from None
    try:
        _check_opened(path, os.fstat(fd), limit)
    except ModelFileError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)  # bounded even if the file grows while being read
        except OSError as exc:
            raise ModelFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise ModelFileError(path, f"file grew past {limit:,} bytes while being read")
    if not data:
        raise ModelFileError(path, "file is empty")
    return data


def _check_opened(path: Path, info: os.stat_result, limit: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ModelFileError(path, "is a folder, expected a FLAME .pkl or .npz file")
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(path, f"is {_file_kind(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        raise ModelFileError(path, f"file is {info.st_size:,} bytes, more than the {limit:,} a FLAME file could need")


def _open_reason(path: Path, exc: OSError) -> str:
    """Why `path` could not be opened, in the words a user looks for."""
    if exc.errno == errno.EISDIR:
        return "is a folder, expected a FLAME .pkl or .npz file"
    return open_reason(exc)


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((what for test, what in kinds if test(mode)), "not a regular file")


def sniff(data: bytes) -> str:
    """'npz', 'pickle', or a description of what the bytes are instead."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "npz"
    if data[:1] == b"\x80" or data[:1] in (b"(", b"}"):  # protocol 2+ or protocol 0 dict/tuple
        return "pickle"
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            return what
    return "not a FLAME model (unknown file type)"


def load_flame(path: str | Path) -> FlameModel:
    """Load a FLAME model from an official pickle or a Facesmith .npz, validated."""
    path = Path(path)
    data = read_bytes(path)
    kind = sniff(data)
    if kind == "npz":
        return _load_npz(path, data)
    if kind == "pickle":
        return _load_pickle(path, data)
    if kind.startswith("not "):
        raise ModelFileError(path, f"{kind}; expected a FLAME .pkl or Facesmith .npz")
    raise ModelFileError(path, f"is {kind}, not a FLAME model (.pkl or .npz)")


def _load_pickle(path: Path, data: bytes) -> FlameModel:
    try:
        raw = safe_pickle.loads(data)
    except safe_pickle.RefusedError as exc:
        raise ModelFileError(path, f"not a loadable FLAME pickle ({exc})") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        MemoryError,
    ) as exc:
        raise ModelFileError(path, f"truncated or corrupt pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(raw, dict):
        raise ModelFileError(path, f"pickle holds a {type(raw).__name__}, expected a FLAME dict")
    return make_model(official_to_arrays(raw, path), path, source=str(path), description=_pickle_description(path))


def _pickle_description(path: Path) -> str:
    name = path.name.lower()
    if name.startswith("flame2023"):
        return "FLAME 2023"
    if name.startswith("generic_model") or "2020" in name:
        return "FLAME 2020"
    return "FLAME (official pickle)"


def _field(raw: dict, key: str, path: Path) -> np.ndarray:
    if key not in raw:
        # Only string keys, and a few: printing an arbitrary pickled key could itself be a bomb.
        keys = sorted(k for k in raw if isinstance(k, str))
        shown = ", ".join(k[:40] for k in keys[:20]) + (", ..." if len(keys) > 20 else "")
        raise ModelFileError(path, f"missing key '{key}' (keys: {shown})")
    try:
        return safe_pickle.to_numpy(raw[key])
    except ValueError as exc:
        raise ModelFileError(path, f"'{key}' {exc}") from None


def official_to_arrays(raw: dict, path: Path) -> dict[str, np.ndarray]:
    """Map an official FLAME pickle's dict to our array names, splitting shapedirs into shape/expression."""
    dirs = _field(raw, "shapedirs", path)
    if dirs.ndim != 3 or dirs.shape[2] <= N_SHAPE_OFFICIAL:
        raise ModelFileError(
            path, f"'shapedirs' has shape {dirs.shape}, expected (V, 3, {N_SHAPE_OFFICIAL} + n_expression)"
        )
    kintree = _field(raw, "kintree_table", path)
    if kintree.ndim != 2 or kintree.shape[0] != 2:
        raise ModelFileError(path, f"'kintree_table' has shape {kintree.shape}, expected (2, joints)")
    parents = kintree[0].astype(np.int64)
    parents[parents >= 2**31] = -1  # the root's parent is stored as uint32 max
    return {
        "v_template": _field(raw, "v_template", path),
        "shapedirs": trim_zero_components(dirs[:, :, :N_SHAPE_OFFICIAL]),
        "exprdirs": trim_zero_components(dirs[:, :, N_SHAPE_OFFICIAL:]),
        "posedirs": _field(raw, "posedirs", path),
        "j_regressor": _field(raw, "J_regressor", path),
        "lbs_weights": _field(raw, "weights", path),
        "parents": parents,
        "faces": _field(raw, "f", path),
    }


def trim_zero_components(basis: np.ndarray) -> np.ndarray:
    """Drop trailing all-zero components (a truncated model padded to the official width)."""
    norms = np.abs(basis).reshape(-1, basis.shape[-1]).max(axis=0)
    nonzero = np.flatnonzero(norms > 0)
    keep = int(nonzero[-1]) + 1 if nonzero.size else 1
    return basis[..., :keep]


def _load_npz(path: Path, data: bytes) -> FlameModel:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [*ARRAY_SPECS, "meta"]
            headers = npz_headers(path, archive, names)
            if "meta" not in headers:
                raise ModelFileError(path, "not a Facesmith model .npz (no 'meta' entry)")
            shape, dtype = headers.pop("meta")
            if shape != () or dtype.kind != "U" or dtype.itemsize > 2**20:
                raise ModelFileError(path, f"'meta' entry has shape {shape} and dtype {dtype}, expected short text")
            check_shapes({name: shape for name, (shape, _) in headers.items()}, path)
            arrays = npz_read(archive, names)
    # zipfile's errors beyond BadZipFile: NotImplementedError for an unknown compression method, RuntimeError for an
    # encrypted entry, and the decompressors' own (zlib.error, LZMAError; bz2's is an OSError). Found by fuzzing.
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, NotImplementedError, RuntimeError,
            zlib.error, lzma.LZMAError) as exc:  # fmt: skip
        raise ModelFileError(path, f"truncated or corrupt .npz ({type(exc).__name__}: {exc})") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError:
        raise ModelFileError(path, "'meta' entry is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != NPZ_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ModelFileError(path, f"unknown model format {found!r}, expected {NPZ_FORMAT!r}")
    return make_model(
        arrays,
        path,
        source=str(path),
        description=str(meta.get("description", "")),
        is_development=bool(meta.get("is_development", False)),
    )


def _members(archive: zipfile.ZipFile, names: Iterable[str]) -> dict[str, zipfile.ZipInfo]:
    # np.savez stores array `x` as `x.npy`; entries we don't ask for are never read.
    wanted = set(names)
    return {i.filename[:-4]: i for i in archive.infolist() if i.filename.endswith(".npy") and i.filename[:-4] in wanted}


def npz_headers(
    path: Path, archive: zipfile.ZipFile, names: Iterable[str]
) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of the named .npz entries, from their .npy headers, reading no data.

    numpy allocates whatever shape a header declares before reading the data (a 15 KB file declaring
    (5023, 3, 1e8) ends in MemoryError), so each shape is checked against MAX_VALUES and the entry's
    uncompressed size here, and object arrays (pickles) are refused.
    """
    headers: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    total = 0
    for name, info in _members(archive, names).items():
        with archive.open(info) as stream:
            shape, _, dtype = safe_pickle.read_npy_header(stream)
            available = info.file_size - stream.tell()
        if dtype.hasobject:
            want = "text" if name == "meta" else "numbers"
            raise ModelFileError(path, f"'{name}' holds Python objects (dtype object), not {want}")
        try:
            safe_pickle.check_npy_size(shape, dtype, available)
        except ValueError as exc:
            raise ModelFileError(path, f"'{name}' {exc}") from None
        total += math.prod(shape) * dtype.itemsize
        headers[name] = shape, dtype
    limit = 8 * safe_pickle.MAX_VALUES  # as float64
    if total > limit:
        raise ModelFileError(path, f"arrays declare {total:,} bytes, more than the {limit:,} a FLAME model could need")
    return headers


def npz_read(archive: zipfile.ZipFile, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The named .npz entries as arrays; call npz_headers first, which checks what this allocates."""
    arrays = {}
    for name, info in _members(archive, names).items():
        with archive.open(info) as stream:
            arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
    return arrays


def save_model_npz(model: FlameModel, path: str | Path) -> Path:
    """Write the model as a Facesmith .npz, atomically."""
    meta = {"format": NPZ_FORMAT, "description": model.description, "is_development": model.is_development}
    arrays = {k: _storage_dtype(v) for k, v in model_arrays(model).items()}
    return atomic_write(path, lambda f: np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays))


def _storage_dtype(arr: np.ndarray) -> np.ndarray:
    # float32 halves the file; the model data itself is float32 in the official release.
    return arr.astype(np.float32) if arr.dtype.kind == "f" else arr.astype(np.int32)
