"""Correcting a head with pins: a pin holds a surface point of the head (a FLAME triangle and barycentric
coordinates, or a vertex) at a pixel of one photo, and the fit is re-solved from the current head with the pins as
strong landmarks (fit/pins.py). `pin` re-solves a `FitResult`; `PinSession` keeps the landmark problem between
re-solves (a drag in Blender); `read_pins` reads a pins file (`facesmith reconstruct --pins`).

A pins file is a JSON list, one object per pin: {"photo": NAME or INDEX, "face": F, "bary": [a, b, c], "xy": [x, y]}
or {"photo": ..., "vertex": V, "xy": [x, y]}; xy in the photo's original pixels (x right, y down), NAME the
photo's file name (or its stem), INDEX its position among the photos given (from 0).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import FacesmithError
from .fit import FitSolution, PhotoState, Pin, Problem, solve_pins
from .fit.rotations import rotation
from .fit.targets import pin_problem
from .flame.forward import JAW, flame_forward
from .flame.model import FlameModel
from .options import DEFAULTS, FitOptions
from .pipeline import default_embedding, pin_residuals, posed_photo
from .result import FitResult, PhotoFit


def photo_state(photo: PhotoFit) -> PhotoState:
    """The fit's state of one photo, back from its result (pose is global, neck, jaw, eyes)."""
    pose = np.asarray(photo.pose, float)
    return PhotoState(np.array(photo.expression, float), rotation(pose[0]), pose[JAW].copy(), photo.camera,
                      pose[3, :2].copy())  # fmt: skip


def result_solution(result: FitResult) -> FitSolution:
    """The current head of a result as the solver's start."""
    names = tuple(p.landmark_names for p in result.photos)
    return FitSolution(np.array(result.shape, float), tuple(photo_state(p) for p in result.photos),
                       tuple(p.residuals_px for p in result.photos), names)  # fmt: skip


class PinSession:
    """Re-solves one head with pins, as often as the artist moves them: the landmark problem is built once."""

    def __init__(
        self, model: FlameModel, result: FitResult, options: FitOptions = DEFAULTS.fit, embedding=None
    ) -> None:
        if len(result.observations) != len(result.photos):
            raise FacesmithError("this result holds no landmarks (a result read from its files): fit the photos "
                                 "again to pin it")  # fmt: skip
        self.model, self.result = model, result
        confidences = np.array([p.confidence for p in result.photos], float)
        weights = confidences / max(float(confidences.max()), 1e-6)
        emb = default_embedding(model) if embedding is None else embedding
        self.problem = Problem(model, list(result.observations), options, weights, emb)

    def solve(self, pins: Sequence[Pin], start: FitResult | None = None) -> FitSolution:
        """The solver's answer with `pins`, from `start` (default: the session's result): the current head."""
        return solve_pins(self.problem, result_solution(start or self.result), pins)

    def resolve(self, pins: Sequence[Pin], start: FitResult | None = None) -> FitResult:
        """The session's result re-solved with `pins` (all of them: pins not given are not held), from `start`."""
        solution = self.solve(pins, start)
        return solved_result(self.model, self.result, solution, pins)


def solved_result(model: FlameModel, result: FitResult, solution: FitSolution, pins: Sequence[Pin]) -> FitResult:
    """`result` with the head of `solution`: β, each photo's expression, pose, camera, mesh and residuals."""
    photos = []
    for photo, state, residuals in zip(result.photos, solution.photos, solution.residuals_px, strict=True):
        pose, vertices, model68 = posed_photo(model, solution.shape, state)
        photos.append(dataclasses.replace(photo, expression=state.expression, pose=pose, camera=state.camera,
                                          vertices=vertices, residuals_px=residuals, model_landmarks68_px=model68))  # fmt: skip
    return dataclasses.replace(
        result, shape=solution.shape, neutral_vertices=flame_forward(model, solution.shape).vertices[0],
        photos=tuple(photos), pins=tuple(pins),
        pin_residuals_px=pin_residuals(solution, pins) if pins else (),
    )  # fmt: skip


def pin(
    model: FlameModel, result: FitResult, pins: Sequence[Pin], options: FitOptions = DEFAULTS.fit, embedding=None
) -> FitResult:
    """`result` (from `Reconstructor.fit` or `.run(...).fit`) re-solved from its head with `pins`."""
    return PinSession(model, result, options, embedding).resolve(pins)


# --- the pins file --------------------------------------------------------------------------------------------------


def parse_pins(entries: list, photos, surface, where: str) -> tuple[Pin, ...]:
    """Every entry of a pins list (a file's, or a head's in Blender) as a Pin (parse_pin); the first that cannot be
    used raises one FacesmithError: "WHERE: pin I: why"."""
    pins = []
    for i, entry in enumerate(entries):
        try:
            pins.append(parse_pin(entry, photos, surface))
        except ValueError as exc:
            raise FacesmithError(f"{where}: pin {i}: {exc}") from None
    return tuple(pins)


def read_pins(path: str | Path, photos: Sequence[str | Path], model: FlameModel) -> tuple[Pin, ...]:
    """The pins of a pins file (module docstring) for `photos` (as given, in order); FacesmithError names the file
    and the first thing wrong with it. A result's JSON "pins" list reads as a pins file too (residual_px ignored)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FacesmithError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FacesmithError(f"{path}: not a JSON pins file ({exc})") from None
    if not isinstance(data, list):
        raise FacesmithError(f"{path}: a pins file holds a JSON list of pins, not a JSON {type(data).__name__}")
    return parse_pins(data, photos, model, str(path))


PIN_KEYS = frozenset({"photo", "face", "bary", "vertex", "xy", "residual_px"})


@dataclasses.dataclass(frozen=True)
class Surface:
    """The triangles pins are put on, where no FlameModel is at hand: a head mesh's own (FLAME's topology, in
    FLAME's order), as Blender keeps it."""

    faces: np.ndarray  # (F, 3)
    n_vertices: int

    @property
    def n_faces(self) -> int:
        return len(self.faces)


def parse_pin(entry: object, photos: Sequence[str | Path], model: FlameModel | Surface) -> Pin:
    """One pins-file entry as a Pin; ValueError says what is wrong with it."""
    if not isinstance(entry, dict):
        raise ValueError(f"a JSON {type(entry).__name__}, not an object such as "
                         '{"photo": 0, "face": 1234, "bary": [0.2, 0.3, 0.5], "xy": [250.0, 310.5]}')  # fmt: skip
    unknown = sorted(set(entry) - PIN_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} (a pin has photo, face and bary or vertex, and xy)")
    missing = [k for k in ("photo", "xy") if k not in entry]
    if missing:
        raise ValueError(f"no {' and no '.join(missing)}")
    photo = photo_index(entry["photo"], photos)
    xy = numbers(entry["xy"], 2, "xy")
    if ("vertex" in entry) == ("face" in entry):
        raise ValueError("give either face and bary, or vertex")
    if "vertex" in entry:
        vertex = integer(entry["vertex"], "vertex")
        if not 0 <= vertex < model.n_vertices:
            raise ValueError(f"vertex {vertex} is not a vertex of the model (0 to {model.n_vertices - 1})")
        pin = Pin.at_vertex(model.faces, photo, vertex, xy)
    else:
        if "bary" not in entry:
            raise ValueError("face without bary (its 3 barycentric coordinates)")
        a, b, c = numbers(entry["bary"], 3, "bary")
        pin = Pin(photo, integer(entry["face"], "face"), (a, b, c), xy)
    why = pin_problem(pin, model.n_faces, len(photos))
    if why:
        raise ValueError(why)
    return pin


def photo_index(value: object, photos: Sequence[str | Path]) -> int:
    """A pin's photo: an index into `photos`, or the file name (or stem) of one of them."""
    if isinstance(value, str):
        found = [i for i, p in enumerate(photos) if value in (Path(p).name, Path(p).stem, str(p))]
        if len(found) != 1:
            names = ", ".join(Path(p).name for p in photos)
            raise ValueError(
                f"photo {value!r} is {'not one' if not found else 'more than one'} of the photos ({names})"
            )
        return found[0]
    index = integer(value, "photo")
    if not 0 <= index < len(photos):
        raise ValueError(f"photo {index} is not one of the {len(photos)} photo(s) (0 to {len(photos) - 1})")
    return index


def integer(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} is {json.dumps(value)}, not an integer")
    return value


def numbers(value: object, n: int, key: str) -> tuple[float, ...]:
    ok = isinstance(value, list) and len(value) == n
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in value)
    if not ok:
        raise ValueError(f"{key} is {json.dumps(value)}, not a list of {n} finite numbers")
    return tuple(float(v) for v in value)


def pin_entry(photo: int | str, surface_point: object, xy: object) -> dict:
    """A pins-file entry (checked by parse_pin) from Python values: `surface_point` a vertex id or (face, bary);
    numpy scalars and arrays become plain JSON values."""
    if isinstance(surface_point, int | np.integer):
        point = {"vertex": plain(surface_point)}
    elif isinstance(surface_point, Sequence) and len(surface_point) == 2:
        point = {"face": plain(surface_point[0]), "bary": plain(surface_point[1])}
    else:
        raise ValueError(f"surface point {surface_point!r} is neither a vertex id nor (face, bary)")
    return {"photo": plain(photo), **point, "xy": plain(xy)}


def plain(value: object) -> object:
    """`value` as JSON holds it: numpy scalars and arrays, and tuples, as Python numbers and lists."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value
