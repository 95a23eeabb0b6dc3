"""Pins (inference/pins.py, fit/pins.py): a pin pulls its point onto its pixel, true pins move the fit towards the
truth, a re-solve keeps the landmark problem, and a pins file that cannot be used fails with the file and the reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facesmith.inference import flame
from facesmith.inference.errors import FacesmithError
from facesmith.inference.fit import FitOptions, Pin, Problem, fit_flame, solve_pins
from facesmith.inference.flame.regions import face_region
from facesmith.inference.pins import read_pins
from facesmith.training.synthetic import observe, sample_head

OPTIONS = FitOptions(camera="orthographic", fit_gaze=False)


def _fit(model, seed: int, noise_px: float = 1.5):
    rng = np.random.default_rng(seed)
    head = sample_head(model, rng, max_yaw_deg=15.0)
    obs = observe(model, head, rng, noise_px=noise_px)
    problem = Problem(model, [obs], OPTIONS)
    truth = head["camera"].project(
        flame.flame_forward(model, head["shape"], head["expression"], head["pose"]).vertices[0]
    )
    return head, problem, fit_flame(model, [obs], OPTIONS), truth


def _projected(model, solution) -> np.ndarray:
    st = solution.photos[0]
    return st.camera.project(flame.flame_forward(model, solution.shape, st.expression, st.pose()).vertices[0])


def test_a_pin_pulls_its_point_onto_its_pixel(procedural_model):
    model = procedural_model
    _, problem, auto, _ = _fit(model, 1)
    vertex = int(np.flatnonzero(face_region(model))[0])
    before = _projected(model, auto)[vertex]
    target = before + np.array([12.0, -8.0])  # a drag of 14 px
    pinned = solve_pins(problem, auto, [Pin.at_vertex(model.faces, 0, vertex, tuple(target))])
    after = _projected(model, pinned)[vertex]
    assert np.linalg.norm(after - target) < np.linalg.norm(before - target) / 5  # (14 px -> 2 px here)
    assert pinned.pin_residuals_px[0][0] == pytest.approx(np.linalg.norm(after - target), abs=1e-6)
    # The landmarks' residuals are still reported without the pin; the problem itself is unchanged.
    assert len(pinned.residuals_px[0]) == len(auto.residuals_px[0]) and not problem.pins


def test_pins_at_the_true_positions_move_the_fit_towards_the_truth(procedural_model):
    model = procedural_model
    head, problem, auto, truth = _fit(model, 4, noise_px=4.0)
    face = np.flatnonzero(face_region(model))
    error = np.linalg.norm(_projected(model, auto) - truth, axis=1)
    worst = face[np.argsort(-error[face])[:10]]  # the artist pins where the head is most wrong
    pins = [Pin.at_vertex(model.faces, 0, int(v), tuple(truth[v])) for v in worst]
    pinned = solve_pins(problem, auto, pins)
    after = np.linalg.norm(_projected(model, pinned) - truth, axis=1)
    assert np.median(after[face]) < 0.8 * np.median(error[face])
    beta = head["shape"][: problem.ns]
    assert np.linalg.norm(pinned.shape - beta) < np.linalg.norm(auto.shape - beta)


def test_a_re_solve_replaces_the_pins_and_starts_from_the_given_head(procedural_model):
    model = procedural_model
    _, problem, auto, _ = _fit(model, 2)
    vertex = int(np.flatnonzero(face_region(model))[5])
    xy = tuple(_projected(model, auto)[vertex] + 10.0)
    once = solve_pins(problem, auto, [Pin.at_vertex(model.faces, 0, vertex, xy)])
    again = solve_pins(problem, auto, [Pin.at_vertex(model.faces, 0, vertex, xy)])
    np.testing.assert_array_equal(once.shape, again.shape)  # deterministic from the same start
    unpinned = solve_pins(problem, auto, [])
    assert np.abs(unpinned.shape - auto.shape).max() < 0.05  # without pins the converged fit hardly moves


def _write(tmp_path, content) -> str:
    path = tmp_path / "pins.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


GOOD = {"photo": 0, "face": 3, "bary": [0.2, 0.3, 0.5], "xy": [100.0, 120.5]}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[{", "not a JSON pins file"),
        ({"pins": []}, "holds a JSON list of pins"),
        (["pin"], "pin 0: a JSON str, not an object"),
        ([GOOD, {**GOOD, "xy": [1.0]}], "pin 1: xy is [1.0], not a list of 2 finite numbers"),
        ([{**GOOD, "photo": "b.jpg"}], "pin 0: photo 'b.jpg' is not one of the photos (a.jpg)"),
        ([{**GOOD, "photo": 1}], "pin 0: photo 1 is not one of the 1 photo(s)"),
        ([{**GOOD, "face": 10**6}], "pin 0: face 1000000 is not a triangle of the model"),
        ([{**GOOD, "bary": [0.5, 0.5, 0.5]}], "pin 0: bary [0.5, 0.5, 0.5] are not 3 barycentric coordinates"),
        ([{**GOOD, "vertex": 3}], "pin 0: give either face and bary, or vertex"),
        ([{"photo": 0, "vertex": -1, "xy": [1, 2]}], "pin 0: vertex -1 is not a vertex of the model"),
        ([{"photo": 0, "face": 2, "xy": [1, 2]}], "pin 0: face without bary"),
        ([{**GOOD, "colour": "red"}], "pin 0: unknown key(s) colour"),
        ([{**GOOD, "face": True}], "pin 0: face is true, not an integer"),
    ],
)
def test_a_bad_pins_file_names_the_file_and_the_reason(procedural_model, tmp_path, content, reason):
    path = _write(tmp_path, content)
    with pytest.raises(FacesmithError) as err:
        read_pins(path, ["photos/a.jpg"], procedural_model)
    assert str(err.value).startswith(f"{path}: ") and reason in str(err.value)
    assert "\n" not in str(err.value)


def test_a_pins_file_reads_names_indices_and_vertices(procedural_model, tmp_path):
    model = procedural_model
    entries = [{**GOOD, "photo": "b"}, {"photo": 0, "vertex": 7, "xy": [3, 4]}]
    pins = read_pins(_write(tmp_path, entries), ["a.jpg", "b.jpg"], model)
    assert pins[0] == Pin(1, 3, (0.2, 0.3, 0.5), (100.0, 120.5))
    assert pins[1].photo == 0 and model.faces[pins[1].face][np.argmax(pins[1].bary)] == 7 and pins[1].xy == (3, 4)


def test_reconstruct_with_a_bad_pins_file_fails_in_one_line_before_any_work(
    procedural_model, astronaut_photo, tmp_path, capsys
):
    from facesmith.cli.main import main
    from facesmith.inference.flame.io import save_model_npz

    model_file = save_model_npz(procedural_model, tmp_path / "procedural.npz")
    pins = _write(tmp_path, [{**GOOD, "photo": "someone_else.jpg"}])
    out = tmp_path / "out"
    args = ["reconstruct", str(astronaut_photo), "-o", str(out), "--pins", str(pins), "--flame", str(model_file)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(pins) in err[0] and "'someone_else.jpg' is not one of the photos" in err[0]
    assert not out.exists()  # nothing was made


def test_pin_re_solves_a_result_and_the_result_keeps_its_pins(procedural_model, astronaut_photo, tmp_path):
    from facesmith.inference.options import DEFAULTS
    from facesmith.inference.pins import PinSession, pin
    from facesmith.inference.pipeline import Reconstructor
    from facesmith.inference.result import FitResult

    with Reconstructor(DEFAULTS, procedural_model) as rec:
        auto = rec.fit([astronaut_photo])
    photo = auto.photos[0]
    vertex = int(np.flatnonzero(face_region(procedural_model))[3])
    xy = photo.camera.project(photo.vertices[vertex][None])[0] + np.array([0.0, 10.0])
    pinned = pin(procedural_model, auto, [Pin.at_vertex(procedural_model.faces, 0, vertex, tuple(xy))])
    moved = pinned.photos[0].camera.project(pinned.photos[0].vertices[vertex][None])[0]
    assert np.linalg.norm(moved - xy) == pytest.approx(pinned.pin_residuals_px[0]) and pinned.pin_residuals_px[0] < 3
    assert np.abs(pinned.neutral_vertices - auto.neutral_vertices).max() > 1e-4  # the identity moved too
    pinned.save(tmp_path / "head")
    loaded = FitResult.load(tmp_path / "head")
    assert loaded.pins == pinned.pins and json.loads((tmp_path / "head.json").read_text())["pins"][0]["face"] >= 0
    with pytest.raises(FacesmithError, match="holds no landmarks"):
        PinSession(procedural_model, loaded)  # landmarks are not saved: fit again to pin a loaded result
