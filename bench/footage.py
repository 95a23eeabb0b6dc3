"""Real footage made from photos, animated with `facesmith animate`, measured against what is known and rendered
beside the footage to look at (the real counterpart of bench/track.py, whose performance is synthetic).

The footage: two real photos of one person (neutral `_03`, smiling `_08` of ../shared/data/faces) cut together at
known frames (a real expression change, not a blend) while the whole image rolls, slides and zooms along known
smooth curves (the head rolls with it; no out-of-plane turn, which photos cannot give). Written as an MP4 at
25 fps and given to the real command (`facesmith animate CLIP.mp4 -o OUT.blend`: the head built from five of its
frames, then tracked). The .blend is then opened and played: at every frame the head mesh as Blender evaluates it
(shape keys, armature), so what is measured is what a user's Action plays.

Measured against the known motion:
- roll: the head's rotation about the camera's view axis (Umeyama on the face vertices, against frame 1) vs the
  roll applied to the footage; RMS error after removing the constant offset (the photos' own head roll differs
  between the two photos, so each photo's segments get their own offset), and the slope of the fit.
- smile cuts: the mouth's width (corner to corner, in the head's frame) per frame; the frame where it crosses
  half-way between the neutral and smiling levels vs the cut frame (lag in frames, + = late).

Goals (over the people, worst case): roll RMS <= 1° (baseline: the applied roll's RMS, a head that does not turn),
roll gain within 10 % of 1, every cut followed within 1 frame, the mouth wider in the smiling segments by >= 1 mm.
Not measured here: out-of-plane turns (photos cannot give them; bench/track.py has them, in-model).

With --sheet, a sheet per person: footage frame | render of the animated head from the scene camera (Cycles CPU)
| the same camera swung 45° about the head, for frames in each segment and beside the cuts.

First measured (development model, 2 CPU cores; people 002, 005, 017; 6 s each): roll RMS 0.19 / 0.22 / 0.20°
(applied 6.30°), gain 0.99 / 1.03 / 1.02, cut lags [0, 0, 0, 0] / [0, 0, 0, 0] / [1, -1, -1, 0] frames (the
centred smoothing window sees a cut a frame early), mouth width neutral -> smile 41.5 -> 54.5 / 45.1 -> 48.4 /
47.9 -> 50.2 mm.

Usage: python bench/footage.py [--people 002 005 017] [--seconds 6] [--out DIR] [--sheet]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SHARED_FACES, Goal, add_check_argument, finish, load_bench_model  # noqa: E402

FPS = 25.0
# Segments (seconds): which photo shows from when; the cuts are the changes.
SCHEDULE = ((0.0, "03"), (1.2, "08"), (2.4, "03"), (3.2, "08"), (4.4, "03"))


def motion(t: np.ndarray) -> dict[str, np.ndarray]:
    """The known image motion: roll (degrees, counter-clockwise on screen), shift (px), zoom."""
    return {
        "roll": 9.0 * np.sin(2 * np.pi * t / 2.7),
        "dx": 18.0 * np.sin(2 * np.pi * t / 3.9 + 1.0),
        "dy": 10.0 * np.sin(2 * np.pi * t / 2.2),
        "zoom": 1.08 + 0.07 * np.sin(2 * np.pi * t / 4.6),
    }


def which_photo(t: np.ndarray) -> np.ndarray:
    starts = np.array([s for s, _ in SCHEDULE])
    return np.array([SCHEDULE[i][1] for i in np.searchsorted(starts, t, side="right") - 1])


def make_footage(person: str, seconds: float, path: Path) -> dict:
    import cv2

    photos = {k: cv2.imread(str(SHARED_FACES / f"{person}_{k}.jpg")) for k in ("03", "08")}
    for k, img in photos.items():
        if img is None:
            raise SystemExit(f"{SHARED_FACES / f'{person}_{k}.jpg'}: not found")
    h, w = photos["03"].shape[:2]
    t = np.arange(int(round(seconds * FPS))) / FPS
    m, shown = motion(t), which_photo(t)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    for i in range(len(t)):
        a = cv2.getRotationMatrix2D((w / 2 + m["dx"][i], h / 2 + m["dy"][i]), m["roll"][i], m["zoom"][i])
        a[:, 2] += (m["dx"][i], m["dy"][i])
        writer.write(cv2.warpAffine(photos[shown[i]], a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    writer.release()
    return {"t": t, "shown": shown, **m}


def play(blend: Path, frames: int, flame_path: str | None = None) -> dict[str, np.ndarray]:
    """Open the animated .blend and evaluate the head at every frame: roll about the view axis (degrees, against
    frame 1, counter-clockwise as the camera sees it) and the mouth's width (mm, in the head's own frame)."""
    import bpy
    from _identity_geom import umeyama

    from facesmith.addon.animate import find_arkit_head
    from facesmith.inference.fit.rotations import rotation_to_axis_angle
    from facesmith.inference.flame import flame_forward, landmarks68

    bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False)
    scene = bpy.context.scene
    head = find_arkit_head(bpy.data.objects)
    model = load_bench_model(flame_path)
    lm = landmarks68(model, flame_forward(model, np.zeros(model.n_shape)))[0]
    corners = [int(np.argmin(np.linalg.norm(model.v_template - lm[k], axis=1))) for k in (48, 54)]
    face = np.linalg.norm(model.v_template - lm[30], axis=1) < 0.08
    toward = np.asarray(scene.camera.matrix_world.to_3x3())[:, 2]  # the camera looks down its -z: +z is toward it
    toward = toward / np.linalg.norm(toward)
    roll, width, first = [], [], None
    for f in range(scene.frame_start, scene.frame_start + frames):
        scene.frame_set(f)
        ev = head.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mesh = ev.to_mesh()
        co = np.empty(len(mesh.vertices) * 3)
        mesh.vertices.foreach_get("co", co)
        ev.to_mesh_clear()
        mw = np.array(ev.matrix_world)
        v = co.reshape(-1, 3)[: model.n_vertices] @ mw[:3, :3].T + mw[:3, 3]
        if first is None:
            first = v
        rot = umeyama(first[face], v[face], with_scale=False)[1]
        roll.append(np.degrees(float(rotation_to_axis_angle(rot) @ toward)))
        local = (v - v[face].mean(0)) @ rot  # back into frame 1's orientation
        width.append(1000 * np.linalg.norm(local[corners[0]] - local[corners[1]]))
    return {"roll": np.array(roll), "width": np.array(width)}


def roll_error(truth: dict, played: np.ndarray) -> dict:
    """RMS (degrees) of the played roll against the applied roll, each photo's segments with their own offset (the
    two photos' head rolls differ); and the least-squares slope (1 = the head turns as much as the image)."""
    seg = (truth["shown"] == "08").astype(float)
    a = np.c_[truth["roll"], np.ones_like(seg) - seg, seg]
    coef, *_ = np.linalg.lstsq(a, played, rcond=None)
    fixed = played - truth["roll"]
    offsets = np.array([fixed[truth["shown"] == k].mean() for k in ("03", "08")])
    resid = fixed - np.where(seg > 0, offsets[1], offsets[0])
    return {"roll_rms_deg": float(np.sqrt(np.mean(resid**2))), "roll_slope": float(coef[0]),
            "roll_applied_rms_deg": float(np.sqrt(np.mean(truth["roll"] ** 2)))}  # fmt: skip


def cut_lags(truth: dict, width: np.ndarray) -> dict:
    """Per cut: the first frame (from 3 before it) whose mouth width is past half-way between the two photos'
    median widths, minus the cut's frame."""
    smile = truth["shown"] == "08"
    lo, hi = float(np.median(width[~smile])), float(np.median(width[smile]))
    mid = 0.5 * (lo + hi)
    lags = []
    for cut in np.flatnonzero(smile[1:] != smile[:-1]) + 1:
        rising = smile[cut]
        after = width[cut - 3 :] > mid if rising else width[cut - 3 :] < mid
        lags.append(int(np.argmax(after)) - 3 if after.any() else None)
    return {"mouth_width_neutral_mm": lo, "mouth_width_smile_mm": hi, "cut_lags_frames": lags}


def sheet(blend: Path, footage: Path, frames: list[int], out: Path, side: int = 256) -> None:
    """Rows: footage frame | the animated head from the scene camera | the same camera swung 45° about the head."""
    import bpy
    import cv2

    from facesmith.addon.build_scene import render_png

    bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False)
    scene = bpy.context.scene
    cap = cv2.VideoCapture(str(footage))
    from mathutils import Matrix, Vector

    from facesmith.addon.animate import find_arkit_head

    head = find_arkit_head(bpy.data.objects)
    centre = sum((head.matrix_world @ Vector(c) for c in head.bound_box), Vector()) / 8
    camera, rows = scene.camera, []
    for f in frames:
        cap.set(cv2.CAP_PROP_POS_FRAMES, f)
        ok, img = cap.read()
        tiles = [cv2.resize(img, (side, side))]
        scene.frame_set(scene.frame_start + f)
        for turn in (0.0, 45.0):  # the camera (a child of the rig) swung about the head's centre, world up
            kept = camera.matrix_world.copy()
            swing = Matrix.Translation(centre) @ Matrix.Rotation(np.radians(turn), 4, "Z") @ Matrix.Translation(-centre)
            camera.matrix_world = swing @ kept
            path = render_png(out.parent / f".frame_{f}_{int(turn)}.png", side, 8)
            camera.matrix_world = kept
            rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            path.unlink()
            alpha = rgba[..., 3:] / 255.0
            tile = (rgba[..., :3] * alpha + 90 * (1 - alpha)).astype(np.uint8)
            tiles.append(cv2.resize(tile, (side, side)))
        row = np.concatenate(tiles, axis=1)
        cv2.putText(row, f"frame {f}", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        rows.append(row)
    cv2.imwrite(str(out), np.concatenate(rows, axis=0))


def person_run(person: str, seconds: float, out: Path, with_sheet: bool, flame_path: str | None) -> dict:
    clip, blend = out / f"{person}_footage.mp4", out / f"{person}_animated.blend"
    truth = make_footage(person, seconds, clip)
    cli = Path(sys.executable).parent / "facesmith"
    flame = ["--flame", flame_path] if flame_path else []
    subprocess.run([str(cli), "animate", str(clip), "-o", str(blend), "--overwrite", *flame], check=True)
    played = play(blend, len(truth["t"]), flame_path)
    report = {"person": person, "frames": len(truth["t"]), **roll_error(truth, played["roll"]),
              **cut_lags(truth, played["width"])}  # fmt: skip
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in report.items()}), file=sys.stderr)
    if with_sheet:
        cuts = [int(round(s * FPS)) for s, _ in SCHEDULE[1:]]
        picks = sorted({5, cuts[0] - 1, cuts[0] + 1, cuts[0] + 8, cuts[1] + 1, cuts[2] + 5, len(truth["t"]) - 5})
        sheet(blend, clip, [f for f in picks if 0 <= f < len(truth["t"])], out / f"{person}_sheet.png")
    return report


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", nargs="+", default=["002", "005", "017"])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--out", type=Path, help="keep the clips, .blend files (and sheets) here")
    parser.add_argument("--sheet", action="store_true", help="render the look sheets (needs --out)")
    parser.add_argument("--flame")
    add_check_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facesmith-footage-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        rows = [person_run(p, args.seconds, out, args.sheet and args.out is not None, args.flame) for p in args.people]
    lags = [abs(x) if x is not None else 99 for r in rows for x in r["cut_lags_frames"]]
    widen = min(r["mouth_width_smile_mm"] - r["mouth_width_neutral_mm"] for r in rows)
    report = {"people": rows, "roll_rms_deg_max": max(r["roll_rms_deg"] for r in rows),
              "roll_gain_error_max": max(abs(r["roll_slope"] - 1) for r in rows), "cut_lag_frames_max": max(lags),
              "smile_widening_mm_min": widen}  # fmt: skip
    applied = rows[0]["roll_applied_rms_deg"]
    goals = [
        Goal("roll_rms_deg_max", round(report["roll_rms_deg_max"], 3), "<=", 1.0, round(applied, 3), "a head that does not turn"),
        Goal("roll_gain_error_max", round(report["roll_gain_error_max"], 3), "<=", 0.1),
        Goal("cut_lag_frames_max", float(report["cut_lag_frames_max"]), "<=", 1.0),
        Goal("smile_widening_mm_min", round(widen, 3), ">=", 1.0, 0.0, "a face that does not move"),
    ]  # fmt: skip
    finish(report, goals, not args.no_check)


if __name__ == "__main__":
    main()
