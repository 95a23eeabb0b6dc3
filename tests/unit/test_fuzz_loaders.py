"""Fuzzing the loaders of files users hand us: photos (inference/images.py), FLAME models (inference/flame/io.py)
and Live Link Face CSVs (inference/arkit_csv.py).

Each case is a valid seed file mutated by hypothesis: bits flipped, bytes inserted, deleted or overwritten with
values that make length and size fields extreme, the file cut short. Model cases are also made at the level of the
arrays (one swapped for an odd shape, dtype or value) and stored with valid zip checksums, so that the checks behind
the archive's are reached too. A loader may return its result, which must then hold its promises, or raise the
project's error (FacesmithError); anything else is a traceback. A case that runs past CASE_TIMEOUT_S is a hang, and
no case may raise the process's peak memory by CASE_PEAK_MB or more. (The peak's growth over a whole run is reported
too, but it is mostly hypothesis's own bookkeeping: some 300 MB per 5,000 model cases with a loader that does nothing.)

The default run tries FAST_CASES per loader; `-m slow` tries FACESMITH_FUZZ_CASES (10,000 unless set) and prints
each loader's figures (cases, outcomes, slowest case, peak memory growth) with `-s`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import resource
import signal
import sys
import time
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesmith.inference.arkit import ARKIT_NAMES
from facesmith.inference.arkit_csv import read_live_link_csv
from facesmith.inference.errors import FacesmithError
from facesmith.inference.flame.io import NPZ_FORMAT, load_flame
from facesmith.inference.images import load_photo

from ..conftest import make_tiny_arrays, official_layout

hypothesis = pytest.importorskip("hypothesis", reason="needs hypothesis (requirements/dev.txt)")
# Pillow warns about the corrupt EXIF and TIFF tags of mutated photos, and carries on: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FAST_CASES = 200
SLOW_CASES = int(os.environ.get("FACESMITH_FUZZ_CASES", "10000"))
CASE_TIMEOUT_S = 10.0  # the slowest legitimate case (a seed photo) takes milliseconds
CASE_PEAK_MB = 256  # a loader's checks should refuse before anything allocates near this
# Values that push length, size and count fields to their limits (little and big endian alike).
EXTREMES = (b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\x00\x00\x00\x00", b"\xff\xff", b"\x00")


class Hang(BaseException):
    """A case ran past CASE_TIMEOUT_S (a BaseException: a loader's `except Exception` must not swallow it)."""


def _alarm(signum, frame):
    raise Hang(f"a case ran past {CASE_TIMEOUT_S} s")


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(("flip", "insert", "delete", "extreme")))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            value = draw(st.sampled_from(EXTREMES))
            data[at : at + len(value)] = value
    if draw(st.integers(0, 9)) == 0:
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data)


class Tally:
    """Figures of one loader's run: cases, outcomes, the slowest case, peak memory growth."""

    def __init__(self, name: str) -> None:
        self.name, self.outcomes, self.slowest, self.largest_mb = name, Counter(), 0.0, 0.0
        self.start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.start = time.perf_counter()

    def run(self, load: Callable[[], object], check: Callable[[object], None]) -> None:
        """One case: `load` must return (and its result pass `check`) or raise FacesmithError, in time."""
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT_S)
        start, peak = time.perf_counter(), _peak_mb()
        try:
            result = load()
        except FacesmithError as exc:
            self.outcomes[type(exc).__name__] += 1
        else:
            check(result)
            self.outcomes["loaded"] += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            self.slowest = max(self.slowest, time.perf_counter() - start)
            self.largest_mb = max(self.largest_mb, _peak_mb() - peak)

    def report(self) -> str:
        growth = self.growth_mb()
        cases = sum(self.outcomes.values())
        return (
            f"fuzz {self.name}: {cases} cases in {time.perf_counter() - self.start:.1f} s, 0 tracebacks, 0 hangs; "
            f"{dict(self.outcomes.most_common())}; slowest case {self.slowest:.3f} s; largest peak rise in one case "
            f"{self.largest_mb:.0f} MB; peak RSS growth over the run {growth:.0f} MB"
        )

    def growth_mb(self) -> float:
        return _peak_mb() - self.start_rss / 1024


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def fuzz(name: str, cases: int, strategy, write: Callable[[Path, object], Path], load, check, tmp: Path) -> None:
    """Run `cases` cases of `strategy`, each written by `write` to a file in `tmp` and loaded with `load`."""
    tally = Tally(name)

    @settings(max_examples=cases, deadline=None, database=None, derandomize=True, phases=(Phase.generate, Phase.shrink),
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def case(value) -> None:
        path = write(tmp, value)
        tally.run(lambda: load(path), check)

    case()
    print(tally.report(), file=sys.stderr)
    assert tally.largest_mb < CASE_PEAK_MB, tally.report()


# --- photos -----------------------------------------------------------------------------------------------------


def _photo_seeds() -> tuple[bytes, ...]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    seeds = []
    for fmt, kw in (("JPEG", {"quality": 80}), ("JPEG", {"progressive": True}), ("PNG", {}), ("WEBP", {}),
                    ("TIFF", {}), ("BMP", {}), ("PNG", {"mode": "LA"}), ("TIFF", {"mode": "I;16"})):  # fmt: skip
        image = rgb.convert(kw.pop("mode")) if "mode" in kw else rgb
        out = io.BytesIO()
        exif = Image.Exif()
        exif[0x0112] = 6  # rotated: the EXIF path is fuzzed too
        image.save(out, fmt, **kw, **({"exif": exif} if fmt in ("JPEG", "WEBP", "PNG") else {}))
        seeds.append(out.getvalue())
    return tuple(seeds)


def _write_bytes(suffix: str) -> Callable[[Path, bytes], Path]:
    def write(tmp: Path, data: bytes) -> Path:
        path = tmp / f"case{suffix}"
        path.write_bytes(data)
        return path

    return write


def _check_photo(photo) -> None:
    h, w, c = photo.rgb.shape
    assert photo.rgb.dtype == np.uint8 and c == 3 and min(h, w) >= 1 and photo.scale >= 1 - 1e-6


@pytest.mark.parametrize("cases", [pytest.param(FAST_CASES), pytest.param(SLOW_CASES, marks=pytest.mark.slow)])
def test_fuzz_photo_loader(tmp_path, cases):
    fuzz("photo", cases, mutated(_photo_seeds()), _write_bytes(".jpg"), load_photo, _check_photo, tmp_path)


# --- FLAME models ---------------------------------------------------------------------------------------------


def _official_pickle(arrays: dict, protocol: int) -> bytes:
    """An official FLAME pickle (chumpy objects, a sparse J_regressor) as tests/conftest.py writes them."""
    from .. import conftest

    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    ch.Ch = conftest._FakeCh
    chumpy.ch = ch
    with pytest.MonkeyPatch.context() as m:  # visible only while pickling, as chumpy is absent when loading
        m.setitem(sys.modules, "chumpy", chumpy)
        m.setitem(sys.modules, "chumpy.ch", ch)
        return pickle.dumps(official_layout(arrays), protocol=protocol)


def _npz(arrays: dict, meta: object) -> bytes:
    out = io.BytesIO()
    np.savez(out, meta=np.array(json.dumps(meta) if not isinstance(meta, np.ndarray) else meta), **arrays)
    return out.getvalue()


META = {"format": NPZ_FORMAT, "description": "fuzz", "is_development": True}


def _model_seeds() -> tuple[bytes, ...]:
    arrays = make_tiny_arrays(n_vertices=12, n_faces=10, n_shape=2, n_expr=2)
    return _npz(arrays, META), _official_pickle(arrays, 2), _official_pickle(arrays, 0)


ODD_ARRAYS = st.sampled_from([
    np.zeros(0), np.zeros((0, 3)), np.zeros((12, 3, 0)), np.full((12, 3), np.nan), np.full((12, 3), np.inf),
    np.array(7), np.ones((12, 3, 2, 1)), np.array([-1, 0, 1, 1, 9]), np.array([0, 0, 1, 1, 1]), np.zeros(5, bool),
    np.full((10, 3), 2**40), np.full((10, 3), -5), np.zeros((12, 3), np.complex64), np.array(["a", "b"]),
    np.zeros((12, 3), np.float16), np.zeros((12, 3), ">f8"), np.zeros((12, 3), "datetime64[s]"), np.zeros((12, 5)),
    np.full((12, 5), 0.2), np.array([b"\x00" * 8]), np.zeros((10, 3), np.uint64) + 2**63,
])  # fmt: skip
ODD_METAS = st.sampled_from([META, {}, [], "x", 1, None, {"format": NPZ_FORMAT, "description": ["x"]},
                             np.array([1, 2]), np.array(b"\xff"), {"format": "facesmith-flame-0"}])  # fmt: skip


@st.composite
def odd_models(draw: st.DrawFn) -> bytes:
    """A tiny model .npz with up to 3 arrays swapped for odd ones, dropped, or extra, and maybe an odd 'meta'."""
    arrays = make_tiny_arrays(n_vertices=12, n_faces=10, n_shape=2, n_expr=2)
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(arrays) + ["extra"]))
        if draw(st.integers(0, 4)) == 0:
            arrays.pop(name, None)
        else:
            arrays[name] = draw(ODD_ARRAYS)
    return _npz(arrays, draw(ODD_METAS) if draw(st.booleans()) else META)


def _check_model(model) -> None:
    assert model.n_vertices > 0 and np.isfinite(model.v_template).all()
    assert model.faces.min() >= 0 and model.faces.max() < model.n_vertices


@pytest.mark.parametrize("cases", [pytest.param(FAST_CASES), pytest.param(SLOW_CASES, marks=pytest.mark.slow)])
def test_fuzz_flame_model_loader(tmp_path, cases):
    fuzz("FLAME model", cases, st.one_of(mutated(_model_seeds()), odd_models()), _write_bytes(".npz"), load_flame,
         _check_model, tmp_path)  # fmt: skip


# --- Live Link Face CSVs --------------------------------------------------------------------------------------

CELLS = ("", "nan", "inf", "-inf", "1e309", "-1", "0.5", "2", "00:00:00:00", "99:99:99:99", "00:00:00:-1",
         "00:00:00:nan", "00:00:00:inf", "9" * 400 + ":00:00:00", "1:2:3:4:5", "\x00", "\ufeff", '"', "a,b", "9" * 400, "00:00:01:59.999")  # fmt: skip


def _csv_seed() -> str:
    names = [n[0].upper() + n[1:] for n in ARKIT_NAMES[:6]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Timecode", "BlendShapeCount", *names, "HeadYaw"])
    for f in range(8):
        writer.writerow([f"00:00:01:{f:02d}.{f * 111:03d}", 61, *(f"{(f * k % 10) / 10:.3f}" for k in range(6)), 0.1])
    return out.getvalue()


@st.composite
def odd_takes(draw: st.DrawFn) -> bytes:
    """The seed take with up to 6 cells (header ones too) replaced by odd ones, or rows dropped or repeated."""
    rows = list(csv.reader(io.StringIO(_csv_seed())))
    for _ in range(draw(st.integers(1, 6))):
        r = draw(st.integers(0, len(rows) - 1))
        if draw(st.integers(0, 5)) == 0:
            rows.insert(draw(st.integers(0, len(rows))), rows.pop(r) if draw(st.booleans()) else list(rows[r]))
        elif rows:
            row = rows[r]
            row[draw(st.integers(0, len(row) - 1))] = draw(st.sampled_from(CELLS))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode(draw(st.sampled_from(("utf-8", "utf-8-sig", "utf-16"))), "surrogatepass")


def _check_take(take) -> None:
    assert take.frames > 0 and np.isfinite(take.seconds).all() and take.seconds[0] == 0
    assert np.all(np.diff(take.seconds) >= 0) and np.isfinite(take.capture_fps) and take.capture_fps > 0
    assert all(((w >= 0) & (w <= 1)).all() for w in take.weights.values())


@pytest.mark.parametrize("cases", [pytest.param(FAST_CASES), pytest.param(SLOW_CASES, marks=pytest.mark.slow)])
def test_fuzz_arkit_csv_loader(tmp_path, cases):
    fuzz("ARKit CSV", cases, st.one_of(mutated((_csv_seed().encode(),)), odd_takes()), _write_bytes(".csv"),
         read_live_link_csv, _check_take, tmp_path)  # fmt: skip
