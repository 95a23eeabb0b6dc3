"""A restricted unpickler for FLAME files: numpy arrays, chumpy and scipy.sparse objects only.

Official FLAME pickles were written with chumpy (`chumpy.ch.Ch`) and scipy (`csc_matrix`) objects.
We never import those packages: their classes map to inert stand-ins that only record their state,
which is then converted to numpy. Any other class is refused, so a pickle cannot run code.

A pickle can still be a bomb without running code: shared references make a 15 KB file describe
2**60 values, a memo index can make the unpickler allocate gigabytes, an array can declare a huge
shape. So every load first walks the opcodes (`_prescan`), numpy arrays are rebuilt only from a state
whose size matches its data, allocation is capped by the file's size, and `to_numpy` counts values
before converting. Each limit sits far above what a real FLAME file needs.
"""

from __future__ import annotations

import copyreg
import io
import math
import operator
import pickle
import pickletools
import re
import struct
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

MAX_OPS = 1_000_000  # pickle opcodes; a FLAME pickle has a few thousand (arrays are single byte strings)
MAX_KEYS = 10_000  # dict/set keys in all, tuple keys weighted by size: bounds hashing, even with crafted collisions
MAX_TUPLE_NODES = 10_000  # a tuple's size with shared sub-tuples counted each time (what hash() and str() walk)
MAX_DEPTH = 64  # nesting of tuples/lists and of chumpy values: numpy 2 arrays have at most 64 dimensions
# Values in one array: the largest real one, FLAME 2023 shapedirs, is 5023 * 3 * 400 ≈ 6.0 M.
MAX_VALUES = 50_000_000


class RefusedError(pickle.UnpicklingError):
    """The pickle names a class or codec outside the allowed set, or is a bomb."""


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


class DtypeState(PickledObject):
    """Stand-in for numpy.dtype, pickled as dtype('f8', False, True) then BUILD (3, '<', ...).

    numpy never sees the pickled state: `_dtype` makes a plain numeric dtype from the name and byte order.
    """

    kind = "numpy.dtype"


_SPARSE = {"csc_matrix": CscObject, "csc_array": CscObject, "csr_matrix": CsrObject, "csr_array": CsrObject}
_DTYPE_NAME = re.compile(r"[biufcO]\d{1,2}")  # 'f8', 'u4', 'b1', 'O8': numbers, and object for .npy dicts

# Bytes that arrays and latin1-decoded strings may materialise during one `loads`; see `_charge`.
_BUDGET: ContextVar[list[int] | None] = ContextVar("safe_pickle_budget", default=None)


def _charge(nbytes: int) -> None:
    # A legitimate pickle materialises each payload at most twice (bytes from latin1 text, then the
    # array), so more than twice the file's size means payloads are being reused: an amplification bomb.
    budget = _BUDGET.get()
    if budget is None:  # outside `loads`, e.g. copying an already loaded array
        return
    budget[0] -= nbytes
    if budget[0] < 0:
        raise RefusedError(
            "refusing: arrays and byte strings add up to more than twice the file's size (a pickle bomb?)"
        )


def _dtype(obj: Any) -> np.dtype:
    name = obj.args[0] if isinstance(obj, DtypeState) and obj.args else None
    if not isinstance(name, str) or not _DTYPE_NAME.fullmatch(name):
        raise ValueError(f"unsupported numpy dtype {str(name)[:20]!r} (numbers only)")
    dtype = np.dtype(name)
    state = obj.state
    if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">"):
        dtype = dtype.newbyteorder(state[1])
    return dtype


class _CheckedArray(np.ndarray):
    """numpy.ndarray as the unpickler sees it: BUILD is checked before numpy allocates anything.

    numpy's own __setstate__ allocates the declared shape first (an object array with a short list even
    crashes numpy 1.26), so the shape must match the data it comes with. `to_numpy` returns plain arrays.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> _CheckedArray:
        # Only REDUCE can call this (numpy's own path is `_reconstruct`): ndarray(shape) allocates unchecked.
        raise RefusedError("refusing to call numpy.ndarray directly")

    def __setstate__(self, state: Any) -> None:
        # numpy's state is (version, shape, dtype, fortran_order, data); old pickles omit the version.
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise ValueError("numpy array with an unreadable state")
        shape, dtype, fortran, raw = state[-4:]
        dtype = _dtype(dtype)
        if not isinstance(shape, tuple) or len(shape) > MAX_DEPTH or not all(type(n) is int and n >= 0 for n in shape):
            raise ValueError(f"numpy array with an invalid shape {str(shape)[:80]}")
        count = math.prod(shape)
        if dtype.hasobject:  # data is a list of the objects
            nbytes, have = count * 8, len(raw) * 8 if isinstance(raw, list) else -1
        else:  # bytes (Python 3) or latin1 text (Python 2)
            nbytes, have = count * dtype.itemsize, len(raw) if isinstance(raw, (bytes, str)) else -1
        if nbytes != have:
            raise ValueError(f"numpy array declares shape {shape} ({nbytes:,} bytes) but holds {max(have, 0):,}")
        _charge(nbytes)
        super().__setstate__((1, shape, dtype, bool(fortran), raw))


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> _CheckedArray:
    # numpy pickles an array as _reconstruct(ndarray, (0,), b'b') then BUILD with the real state.
    # The declared shape is ignored: only BUILD's shape counts, and it is checked there.
    if subtype is not _CheckedArray:
        raise RefusedError("refusing numpy._reconstruct of a class other than ndarray")
    return _RECONSTRUCT(_CheckedArray, (0,), b"b")


def _scalar(dtype: Any, raw: Any = None) -> Any:
    dtype = _dtype(dtype)
    if dtype.hasobject:  # numpy would return `raw` itself; no FLAME file has one
        raise ValueError("numpy object scalars are not supported")
    if isinstance(raw, str) and len(raw) == dtype.itemsize:
        raw = raw.encode("latin1")  # Python 2 str payload
    if not isinstance(raw, bytes) or len(raw) != dtype.itemsize:
        raise ValueError("numpy scalar with data of the wrong size")
    return np.frombuffer(raw, dtype)[0]


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Python 3 protocol-2 pickles store bytes as _codecs.encode(text, "latin1").
    if not isinstance(encoding, str) or encoding.replace("-", "").lower() not in ("latin1", "utf8"):
        raise RefusedError(f"refusing codec {str(encoding)[:20]!r}")
    if not isinstance(text, str):
        raise ValueError("_codecs.encode of a non-string")
    _charge(len(text))  # a memoised string encoded over and over is an amplification bomb
    return text.encode(encoding)


# Taken from numpy's own pickling so this works whether numpy calls its core `core` or `_core`.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_ALLOWED: dict[tuple[str, str], Any] = {("_codecs", "encode"): _latin1_encode}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_mod, "_reconstruct")] = _reconstruct
    _ALLOWED[(_mod, "scalar")] = _scalar
for _mod in ("numpy", "numpy.core.numeric", "numpy._core.numeric"):
    _ALLOWED[(_mod, "ndarray")] = _CheckedArray
    _ALLOWED[(_mod, "dtype")] = DtypeState
# Python 2 pickles (FLAME 2020) name these through copy_reg / __builtin__.
for _mod in ("copy_reg", "copyreg"):
    _ALLOWED[(_mod, "_reconstructor")] = copyreg._reconstructor  # type: ignore[attr-defined]
for _mod in ("__builtin__", "builtins"):
    _ALLOWED[(_mod, "object")] = object


def _resolve(module: str, name: str) -> Any:
    if (module, name) in _ALLOWED:
        return _ALLOWED[(module, name)]
    if module == "chumpy" or module.startswith("chumpy."):
        return ChumpyObject
    if module.startswith("scipy.sparse") and name in _SPARSE:
        return _SPARSE[name]
    raise RefusedError(f"refusing to load class {module[:100]}.{name[:100]}")


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _resolve(module, name)


# Opcodes FLAME pickles never use: external references and out-of-band buffers.
_REFUSED_OPS = {"PERSID", "BINPERSID", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER"}
_TUPLE_OPS = {"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"}
_LEAF = (1, 0)  # (nodes, depth) of anything that is not a tuple


# Length prefixes of string, bytes and long arguments (pickletools' TAKEN_FROM_ARGUMENT* codes).
_PREFIX = {
    pickletools.TAKEN_FROM_ARGUMENT1: "<B",
    pickletools.TAKEN_FROM_ARGUMENT4: "<i",
    pickletools.TAKEN_FROM_ARGUMENT4U: "<I",
    pickletools.TAKEN_FROM_ARGUMENT8U: "<Q",
}


def _ops(data: bytes) -> Iterator[tuple[pickletools.OpcodeInfo, Any]]:
    """pickletools.genops, but payloads are skipped, not decoded, and only short strings are returned.

    Decoding is what genops spends its time on (80 ms for a 58 MB model), and it fails on the binary
    data Python 2 wrote into protocol-0 STRING arguments (FLAME's landmark pickles).
    """
    stream = io.BytesIO(data)
    while True:
        code = stream.read(1)
        op = pickletools.code2op.get(code.decode("latin-1"))
        if op is None:
            raise pickle.UnpicklingError(f"unknown opcode {code!r}" if code else "pickle ends before STOP")
        prefix = _PREFIX.get(op.arg.n) if op.arg else None
        arg: Any = None
        if op.name == "STRING":
            if not stream.readline().endswith(b"\n"):
                raise pickle.UnpicklingError("pickle ends inside a string")
        elif prefix:
            head = stream.read(struct.calcsize(prefix))
            size = struct.unpack(prefix, head)[0] if len(head) == struct.calcsize(prefix) else -1
            if not 0 <= size <= len(data) - stream.tell():  # no payload can be longer than the file
                raise pickle.UnpicklingError(f"{op.name} runs past the end of the pickle")
            if size <= 200:  # only class names (for STACK_GLOBAL) are needed
                arg = stream.read(size).decode("utf-8", "replace")
            else:
                stream.seek(size, io.SEEK_CUR)
        elif op.arg:
            arg = op.arg.reader(stream)
        yield op, arg
        if op.name == "STOP":
            return


def _tuple_entry(items: list[Any]) -> tuple[int, int]:
    nodes = 1 + sum(i[0] if isinstance(i, tuple) else 1 for i in items)
    depth = 1 + max((i[1] for i in items if isinstance(i, tuple)), default=0)
    if nodes > MAX_TUPLE_NODES:
        raise RefusedError(f"refusing: nested tuples expand to more than {MAX_TUPLE_NODES:,} values (a pickle bomb?)")
    if depth > MAX_DEPTH:
        raise RefusedError(f"refusing: tuples nest more than {MAX_DEPTH} deep (a pickle bomb?)")
    return nodes, depth


def _prescan(data: bytes) -> None:
    """Simulate the unpickler's stack before anything is built: refuse foreign classes and bound the work.

    Each stack slot holds (nodes, depth) of a tuple tree, or a short string (the names STACK_GLOBAL reads).
    Tuples are immutable, so their size is known when built: that catches the bombs that hang inside the
    unpickler itself (hashing a 2**60-node tuple used as a dict key). Lists are checked by `to_numpy`.
    """
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    keys = 0
    for n, (op, arg) in enumerate(_ops(data)):
        name = op.name
        if n >= MAX_OPS:
            raise RefusedError(f"refusing: more than {MAX_OPS:,} pickle operations (a pickle bomb?)")
        if name in _REFUSED_OPS:
            raise RefusedError(f"refusing pickle opcode {name}")
        if name in ("GLOBAL", "INST"):
            module, _, qualname = arg.partition(" ")
            _resolve(module, qualname)
        if name == "MARK":
            marks.append(len(stack))
            continue
        if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            index = len(memo) if name == "MEMOIZE" else arg
            if index > n:  # picklers number memo slots in order; a huge index makes the unpickler allocate it
                raise RefusedError(f"refusing memo index {index:,} after {n:,} operations (a pickle bomb?)")
            if not stack:
                raise pickle.UnpicklingError(f"{name} on an empty stack")
            memo[index] = stack[-1]
            continue
        if name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in memo:
                raise pickle.UnpicklingError(f"memo key {arg} missing")
            stack.append(memo[arg])
            continue
        if name == "DUP" and stack:
            stack.append(stack[-1])
            continue
        if name == "POP" and marks and marks[-1] == len(stack):  # POP right after MARK drops the mark
            marks.pop()
            continue
        before = op.stack_before
        items: list[Any] = []
        below = len(before)
        if pickletools.markobject in before:
            if not marks:
                raise pickle.UnpicklingError(f"{name} without MARK")
            at = marks.pop()
            items, stack[at:] = stack[at:], []
            below = before.index(pickletools.markobject)
        if len(stack) < below:
            raise pickle.UnpicklingError(f"{name} on a too short stack")
        popped, stack[len(stack) - below :] = stack[len(stack) - below :], []
        if name == "STACK_GLOBAL":
            if not all(isinstance(s, str) for s in popped):
                raise RefusedError("refusing a class named by computed strings")
            _resolve(*popped)
        hashed = popped[1:2] if name == "SETITEM" else items[::2] if name in ("SETITEMS", "DICT") else []
        hashed = items if name in ("ADDITEMS", "FROZENSET") else hashed
        keys += sum(k[0] if isinstance(k, tuple) else 1 for k in hashed)
        if keys > MAX_KEYS:
            raise RefusedError(f"refusing: more than {MAX_KEYS:,} dictionary keys (a pickle bomb?)")
        if name in _TUPLE_OPS:
            stack.append(_tuple_entry(items or popped))
        elif name in _STRING_OPS and isinstance(arg, str) and len(arg) <= 200:
            stack.append(arg)
        elif op.stack_after:
            # The result may be one of the inputs (BUILD returns its instance, APPEND its list): to never
            # undercount a tuple, it inherits the largest tuple it consumed.
            stack.append(max((e for e in popped if isinstance(e, tuple)), default=_LEAF))


def loads(data: bytes) -> Any:
    """Unpickle `data` allowing only numpy arrays and chumpy/scipy stand-ins, within bounded work and memory.

    latin1 decodes Python 2 str payloads (numpy buffers) byte for byte.
    """
    _prescan(data)
    token = _BUDGET.set([2 * len(data) + 2**20])
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    finally:
        _BUDGET.reset(token)


def read_npy_header(stream: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from a .npy header, reading no data (numpy's header parser is literal-only)."""
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy format version {version}")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, fortran, dtype = read(stream)
    except Exception as exc:  # numpy's parser also raises SyntaxError and tokenize errors, some multi-line
        first_line = str(exc).strip().split("\n")[0]
        raise ValueError(f"unreadable .npy header ({type(exc).__name__}: {first_line})") from None
    if len(shape) > MAX_DEPTH or any(n < 0 for n in shape):
        raise ValueError(f"invalid .npy shape {str(shape)[:80]}")
    return shape, fortran, dtype


def check_npy_size(shape: tuple[int, ...], dtype: np.dtype, available: int) -> None:
    """Refuse a .npy whose header declares more data than it holds, before numpy allocates the shape."""
    count = math.prod(shape)
    if count > MAX_VALUES:
        raise ValueError(f"declares shape {shape}: {count:,} values, more than the {MAX_VALUES:,} any FLAME array has")
    if count * dtype.itemsize > available:
        raise ValueError(f"declares shape {shape} ({count * dtype.itemsize:,} bytes) but holds {available:,}")


def load_npy(data: bytes) -> Any:
    """Read a .npy file, allowing an object payload only through the restricted unpickler."""
    buf = io.BytesIO(data)
    shape, fortran, dtype = read_npy_header(buf)
    if dtype.hasobject:
        obj = loads(buf.read())
        return obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj
    check_npy_size(shape, dtype, len(data) - buf.tell())
    buf.seek(0)
    return np.load(buf, allow_pickle=False)


_NUMBER = (int, float, np.number, np.bool_)


def _count_values(obj: list | tuple, depth: int, seen: dict[int, int], active: set[int]) -> int:
    """How many numbers a nested list holds once expanded, in time linear in its distinct lists.

    Shared sub-lists are counted from `seen` (by id), not walked again: that is what keeps a 15 KB
    pickle of [a, a] pairs from expanding to 2**60 values here or in np.asarray.
    """
    if id(obj) in seen:
        return seen[id(obj)]
    if id(obj) in active:
        raise ValueError("is a list that contains itself")
    if depth > MAX_DEPTH:
        raise ValueError(f"nests lists more than {MAX_DEPTH} deep")
    active.add(id(obj))
    total = 0
    for item in obj:
        if isinstance(item, (list, tuple)):
            total += _count_values(item, depth + 1, seen, active)
        elif isinstance(item, np.ndarray):
            total += item.size
        elif isinstance(item, _NUMBER):
            total += 1
        else:
            raise ValueError(f"holds a {type(item).__name__} (Python objects), not numbers")
        if total > MAX_VALUES:
            raise ValueError(f"refused: nested lists expand to more than {MAX_VALUES:,} values (a pickle bomb?)")
    active.discard(id(obj))
    seen[id(obj)] = total
    return total


def to_numpy(obj: Any) -> np.ndarray:
    """Convert a loaded value (array, list, chumpy or sparse stand-in) to a dense numpy array.

    Raises ValueError for anything that is not numbers, or that would expand past MAX_VALUES.
    """
    for _ in range(MAX_DEPTH):  # a chumpy value may wrap another; a cycle must not loop forever
        if not isinstance(obj, ChumpyObject):
            break
        state = obj.state if isinstance(obj.state, dict) else {}
        if "x" not in state:
            raise ValueError("chumpy object without a plain value ('x')")
        obj = state["x"]
    else:
        raise ValueError(f"chumpy objects nest more than {MAX_DEPTH} deep")
    if isinstance(obj, SparseObject):
        return _sparse_to_dense(obj)
    if isinstance(obj, (list, tuple)):
        _count_values(obj, 1, {}, set())
    elif not isinstance(obj, (np.ndarray, *_NUMBER)):
        raise ValueError(f"holds a {type(obj).__name__} (Python objects), not numbers")
    try:
        arr = np.asarray(obj)
    except (OverflowError, TypeError) as exc:  # e.g. an int too large for any numpy type
        raise ValueError(f"is not a numeric array ({exc})") from None
    if arr.dtype.hasobject:
        raise ValueError("holds Python objects (dtype object), not numbers")
    return arr


def _sparse_to_dense(obj: SparseObject) -> np.ndarray:
    state = obj.state if isinstance(obj.state, dict) else {}
    shape = state.get("_shape", state.get("shape"))
    fmt = obj.format
    try:
        rows, cols = (operator.index(n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"sparse matrix with an invalid shape {str(shape)[:80]}") from None
    if rows < 0 or cols < 0 or rows * cols > MAX_VALUES:
        raise ValueError(f"sparse matrix of shape {(rows, cols)} is too large to make dense")
    data, indices, indptr = (to_numpy(state.get(k)) for k in ("data", "indices", "indptr"))
    if indptr.ndim != 1 or fmt not in ("csc", "csr"):
        raise ValueError(f"unsupported sparse matrix (format {fmt!r})")
    major = cols if fmt == "csc" else rows
    if indptr.shape[0] != major + 1 or indptr[-1] != data.shape[0] or indices.shape != data.shape:
        raise ValueError("inconsistent sparse matrix arrays")
    lengths = np.diff(indptr)
    # np.repeat below allocates sum(lengths): only a non-decreasing integer indptr from 0 keeps that = nnz.
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu" or indptr[0] != 0 or (lengths < 0).any():
        raise ValueError("inconsistent sparse matrix arrays")
    dense = np.zeros((rows, cols), dtype=np.float64)
    majors = np.repeat(np.arange(major), lengths)
    if indices.size and (indices.min() < 0 or indices.max() >= (rows if fmt == "csc" else cols)):
        raise ValueError("sparse matrix indices out of range")
    if fmt == "csc":
        dense[indices, majors] = data
    else:
        dense[majors, indices] = data
    return dense
