"""Detail that does not age the face: the displacement's strength set from evidence.

The displacement map (texture/displacement.py) is read from the shading left after de-lighting. Whatever else
varies at that scale (freckles, pores, stubble, a blotchy cheek, the photo's noise) is read as relief too, and
then creases a young face. How much of the recovered map to trust is a measurement, not a taste: for each source
photo, its baked albedo (real skin variation, the source's own) is put on its fitted head with a known relief
(band-pass noise, ±0.5 mm, 0.7–2 mm features) as real geometry, rendered in Blender (Cycles, a key light from above
and the side, as bench/textures.py), and the whole pipeline reads the render back. On the face texels it saw well,
against the truth as the render shows it at each texel's pixel (bench/textures.py's displacement_report):
- `optimal_strength`: the scale s minimising Σ(s·recovered − truth)², i.e. Σ truth·recovered / Σ recovered², the
  least-squares (Wiener) weight of the recovered map given the leak of albedo into it; pooled over the sources;
- `error_ratio`: RMS(strength·recovered − truth) ÷ RMS(truth) at the shipped default strength; above 1 the
  detail adds more false relief than true relief it recovers (no detail scores 1);
- `false_relief_ratio`: the RMS of what is read from the same head rendered without relief, ÷ the true relief's:
  with the relief read from the shading that does not change the skin's colour (displacement.achromatic_residual,
  the default) and from the luminance alone (the baseline), in the same run.
Sources (fixed rule, no look at the scores): UTKFace crops (real, ordinary), the first frontal one (sorted name,
|yaw| < 15°) in each of young (20–30) and old (60–80) × light (UTKFace race 0) and dark (race 1) skin.
Goals: error_ratio < 1 on every source at the default strength (the detail never adds more false relief than the
true relief it finds), and on average at least 5 % less false relief with the colour taken out than without.
Measured 2026-12-07 (2 loaded cores; renders reused with --keep): optimal strength 1.55 / 1.45 / 1.37 / 1.70 (young
light, young dark, old light, old dark; pooled 1.50), error ratio at the default 1.0: 0.92 / 0.91 / 0.95 / 0.95,
false relief 0.22 / 0.24 / 0.12 / 0.15 × the true relief's RMS (0.09 mm) against 0.25 / 0.24 / 0.18 / 0.17 from the
luminance alone (mean ratio 0.86). Before unlit texels were left out of the relief equations
(displacement.shading_slopes) the old dark-skinned face got no relief at all (0.006 × the truth's RMS: the
integration diverged on 5 % of texels the side light barely reached).
What the optimum says: it scales with the true relief's variance (Wiener), so one figure cannot set the strength
for everyone: this known relief (±0.5 mm, 0.09 mm RMS, deeper than young skin's) wants about 1.5, and by the same
relation (recovery gain ≈ 0.1, false relief 0.01–0.02 mm) half its amplitude would want about 0.45; the default 1.0
lies between, and --detail-strength scales it. On ordinary photos the whole recovered map is 0.02–0.05 mm RMS,
most of it what skin texture alone also produces: a head can still look more weathered than the photo.
Not independent truth for the albedo (the source's own bake); the relief is independent (rendered as geometry), read
through the fit's own texel→pixel mapping (UV registration error excluded, as in bench/textures.py).
Renders already in --keep DIR are reused (delete them after changing the renderer or the sources).

Usage: python bench/detail.py [--sources N] [--keep DIR] [--flame PATH] [--no-check]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Goal, add_check_argument, finish, load_bench_model, pipeline_options

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))
UTKFACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "train_faces"
# (label, age range, UTKFace race code): age_gender_race_date.jpg.chip.jpg
GROUPS = (
    ("young_light", (20, 30), 0),
    ("young_dark", (20, 30), 1),
    ("old_light", (60, 80), 0),
    ("old_dark", (60, 80), 1),
)
MAX_YAW_DEG = 15.0
FALSE_RELIEF_DROP = 0.95  # the colour-blind reading must remove a clear share of the false relief, not match it
KIND = "known relief rendered as geometry on the source's own head and baked albedo, read through the fit's mapping"


def utk_label(path: Path) -> tuple[int, int] | None:
    """(age, race) from a UTKFace file name, None where it does not parse."""
    parts = path.name.split("_")
    try:
        return int(parts[0]), int(parts[2])
    except (IndexError, ValueError):
        return None


def yaw_degrees(pose: np.ndarray) -> float:
    """The head's yaw (degrees) from a fit's (5, 3) axis-angle pose: global, then neck."""
    from scipy.spatial.transform import Rotation

    from facesmith.inference.fit.person import head_yaw

    rotation = (Rotation.from_rotvec(pose[0]) * Rotation.from_rotvec(pose[1])).as_matrix()
    return float(np.degrees(head_yaw(rotation)))


def pick_sources(rec, count: int) -> list[tuple[str, Path]]:
    """The first frontal crop (sorted by name) of each group in GROUPS, up to `count` groups."""
    files = sorted(UTKFACE.glob("*.jpg"))
    chosen = []
    for label, (low, high), race in GROUPS[:count]:
        for path in files:
            parsed = utk_label(path)
            if parsed is None or not (low <= parsed[0] <= high and parsed[1] == race):
                continue
            try:
                fit = rec.fit([path]).photos[0]
            except Exception:  # noqa: BLE001 - a crop the pipeline refuses is simply not chosen
                continue
            if abs(yaw_degrees(fit.pose)) < MAX_YAW_DEG:
                chosen.append((label, path))
                break
    return chosen


def wiener(recovered: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Σ truth·recovered and Σ recovered²: the least-squares strength's numerator and denominator."""
    return float(truth @ recovered), float(recovered @ recovered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=len(GROUPS), help=f"groups to use (default {len(GROUPS)})")
    parser.add_argument("--keep", type=Path, help="keep the renders in this folder")
    parser.add_argument("--flame")
    add_check_argument(parser)
    args = parser.parse_args()

    from textures import DISPLACEMENT_LIGHT, Light, known_relief, render, render_height, truth_at_texels

    from facesmith.inference.images import load_photo
    from facesmith.inference.options import DEFAULTS
    from facesmith.inference.pipeline import Reconstructor
    from facesmith.inference.rig import rig_data
    from facesmith.inference.texture.albedo import TextureBaker
    from facesmith.inference.texture.maps import TextureSet

    options = pipeline_options(args.flame)
    model = load_bench_model(args.flame)
    baker = TextureBaker(model, 1024)
    out = args.keep or Path(tempfile.mkdtemp(prefix="facesmith-detail-"))
    out.mkdir(parents=True, exist_ok=True)
    report, sums, t0 = {}, np.zeros(2), time.perf_counter()
    with Reconstructor(options, model) as rec:

        def read_back(path: Path, with_baker: TextureBaker = baker):
            fit = rec.fit([path]).photos[0]
            photo = load_photo(path, options.working_side)
            tex, _ = with_baker.bake([(photo.rgb, photo.scale, fit)])
            return tex.displacement, with_baker.photo_texture(photo.rgb, photo.scale, fit)

        luminance_only = dataclasses.replace(baker, relief_chroma=False)
        for label, source in pick_sources(rec, args.sources):
            photo = load_photo(source, options.working_side)
            fit = rec.fit([source])
            known, _ = baker.bake([(photo.rgb, photo.scale, fit.photos[0])])
            rig = rig_data(model, fit, 0, "truth")
            relief = TextureSet(known.albedo, known_relief(np.random.default_rng(0), known.displacement.shape))
            flat = dataclasses.replace(relief, displacement=np.zeros_like(relief.displacement))
            paths = {name: out / f"{label}_{name}.png" for name in ("relief", "none")}
            truth_path = out / f"{label}_height.npy"
            for name, textures in (("relief", relief), ("none", flat)):
                if not paths[name].is_file() or (name == "relief" and not truth_path.is_file()):
                    head = render(rig, textures, Light(*DISPLACEMENT_LIGHT), 0.15, paths[name], False, 1024, 64)
                    if name == "relief":
                        np.save(truth_path, render_height(head.mesh, relief, out / f"{label}_height.exr"))
            truth_px = np.load(truth_path)
            recovered, part = read_back(paths["relief"])
            at_texel, face = truth_at_texels(part, truth_px)
            r, t = recovered[face].astype(np.float64), at_texel[face].astype(np.float64)
            num, den = wiener(r, t)
            sums += (num, den)
            strength = DEFAULTS.detail_strength
            rms_t = float(np.sqrt(np.mean(t**2)))
            false = {
                key: float(np.sqrt(np.mean(read_back(paths["none"], b)[0][face].astype(np.float64) ** 2))) / rms_t
                for key, b in (("chroma", baker), ("luminance", luminance_only))
            }
            report[label] = {
                "photo": source.name,
                "texels": int(face.sum()),
                "correlation": round(float(np.corrcoef(r, t)[0, 1]), 3),
                "optimal_strength": round(num / max(den, 1e-30), 3),
                "error_ratio_default": round(float(np.sqrt(np.mean((strength * r - t) ** 2))) / rms_t, 3),
                "false_relief_ratio": round(false["chroma"], 3),
                "false_relief_ratio_luminance_only": round(false["luminance"], 3),
                "recovered_rms_ratio": round(float(np.sqrt(np.mean(r**2))) / rms_t, 3),
                "true_rms_mm": round(1000 * rms_t, 4),
            }
            print(label, report[label], flush=True)
    if not report:
        raise SystemExit("bench/detail.py: no source photo could be fitted")
    pooled = float(sums[0] / max(sums[1], 1e-30))
    report["pooled_optimal_strength"] = round(pooled, 3)
    report["default_strength"] = DEFAULTS.detail_strength
    report["seconds"] = round(time.perf_counter() - t0)
    labels = [k for k in report if isinstance(report[k], dict)]
    worst = max(report[k]["error_ratio_default"] for k in labels)
    false_change = float(
        np.mean([report[k]["false_relief_ratio"] / report[k]["false_relief_ratio_luminance_only"] for k in labels])
    )
    goals = [
        Goal("worst_error_ratio_default", worst, "<", 1.0, 1.0, "no detail", KIND),
        Goal("mean_false_relief_vs_luminance_only", false_change, "<=", FALSE_RELIEF_DROP, 1.0, "luminance only", KIND),
    ]
    finish(report, goals, not args.no_check)


if __name__ == "__main__":
    main()
