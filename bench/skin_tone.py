"""Skin tone that survives the light (texture/colour.py): the same portrait re-lit in the image.

Each portrait is fitted once on its photo. The photo is then re-lit in linear RGB as a camera balanced for
6500 K would record it under another light, and written back to 8-bit sRGB (so +1 EV clips, as a camera does):
colour temperature 3000 / 4000 / 7500 K, exposure ±1 EV, warm and dim (3000 K, −1 EV) and cool and bright
(7500 K, +1 EV), and a coloured side light (an amber light from the subject's right, its strength falling across
the face). Every variant is baked with the same fit (only the texture stage is measured), with and without colour
constancy in the same run; the figure is CIE76 ΔE between the face's median albedo (seen skin texels) of the
variant and of the original photo, pooled over portraits × variants.
Not independent truth: the reference is this pipeline's own bake of the original photo (invariance, not
accuracy); the prior it uses (assets/colour_prior.npz) was built from these same portraits' originals.
Goals: median ΔE ≤ 3 and p90 ≤ 6 with colour constancy (today's, without, reported as the baseline).
Black and white: each portrait also as a black-and-white photo (its linear luminance in all three channels), against
the colour photo's bake: a black-and-white photo's skin takes the skin model's colour for its lightness
(ColourPrior.skin_at); goal median ΔE ≤ 8 (baseline: the grey albedo it had before, = --keep-photo-colour's).
`--faces 12 --size 256`: 3.30 (p90 4.66) against 15.93 (20.1) — in-sample, the skin model was built from these
portraits; out of sample, 46 colour UTKFace crops (list48 of the sixth session's note) made black and white: 7.52
(p90 12.4) against 19.99 (25.9).
Measured (2 loaded cores, `--size 256`, all 204 portraits): median 2.92, p90 5.82 — both met, narrowly (without:
17.77, 36.58); per variant 3000 K 2.10, 4000 K 1.06, 7500 K 2.60, +1 EV 3.06, −1 EV 3.58, warm+dim 5.68, cool+bright
4.71, amber side 2.35. On 48 of them (`--faces 48`): median 2.92, p90 5.75 (without: 17.80, 36.78). Per variant, median with (without): 3000 K 2.15 (39.5), 4000 K 0.94 (21.9), 7500 K 2.59 (4.83), +1 EV 2.86
(17.9), −1 EV 3.60 (16.0), warm+dim 5.74 (30.6), cool+bright 4.68 (18.1), amber side 2.38 (5.53). Before the exposure
was read from the part of the scene that did not clip (texture/colour.py SCENE_QUANTILES): median 3.21, p90 8.22,
+1 EV 7.23, cool+bright 8.4. With the true exposure (an oracle) the same bakes give median 1.84, p90 4.64: what is
left is the exposure's shrinkage towards the studio's (σ 0.5 EV judged; −1 EV and warm+dim read 0.2 EV short)
and, at +1 EV, skin that clipped.

Usage: python bench/skin_tone.py [--faces N | --names 002_03 ...] [--size 512] [--flame PATH] [--no-check]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import OWN_BAKE, SHARED_FACES, Goal, add_check_argument, finish, load_bench_model, pipeline_options

# name: (kelvin, exposure EV, side light)
VARIANTS = {
    "3000K": (3000.0, 0.0, False),
    "4000K": (4000.0, 0.0, False),
    "7500K": (7500.0, 0.0, False),
    "+1EV": (6500.0, 1.0, False),
    "-1EV": (6500.0, -1.0, False),
    "warm_dim": (3000.0, -1.0, False),
    "cool_bright": (7500.0, 1.0, False),
    "amber_side": (6500.0, 0.0, True),
}
GREY_GOAL = 8.0  # ΔE of a black-and-white copy's albedo: about the spread of skin colours at one lightness
SIDE_LIGHT = np.array([1.0, 0.55, 0.2])  # an amber gel's colour
SIDE_STRENGTH = 0.8  # the side light's irradiance where it is strongest, relative to the key


def relight(rgb: np.ndarray, kelvin: float, ev: float, side: bool, face_x: tuple[float, float]) -> np.ndarray:
    """The photo (uint8 sRGB) as recorded under another light: white balance gain, exposure, and optionally a
    coloured light from image-left (the subject's right) fading across the face between `face_x` (x0, x1)."""
    from facesmith.inference.texture.colour import white_balance_gain
    from facesmith.inference.texture.maps import linear_to_srgb, srgb_to_linear

    linear = srgb_to_linear(rgb / 255.0) * white_balance_gain(kelvin) * 2.0**ev
    if side:
        x = np.arange(rgb.shape[1], dtype=np.float32)
        ramp = np.clip((face_x[1] - x) / max(face_x[1] - face_x[0], 1.0), 0, 1) ** 2
        linear = linear * (1 + SIDE_STRENGTH * ramp[None, :, None] * SIDE_LIGHT)
    return np.round(linear_to_srgb(np.clip(linear, 0, 1)) * 255).astype(np.uint8)


def greyscale(rgb: np.ndarray) -> np.ndarray:
    """The photo (uint8 sRGB) as a black-and-white photo: its linear luminance in all three channels."""
    from facesmith.inference.texture.colour import LUMINANCE
    from facesmith.inference.texture.maps import linear_to_srgb, srgb_to_linear

    grey = srgb_to_linear(rgb / 255.0) @ LUMINANCE
    return np.repeat(np.round(linear_to_srgb(grey) * 255).astype(np.uint8)[..., None], 3, axis=2)


def face_median(texture) -> np.ndarray:
    """Median linear albedo (3,) over the seen skin texels of one photo's texture."""
    keep = (texture.weight > 0) & texture.skin
    return np.median(texture.albedo[keep], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--faces", type=int, default=0, help="only N portraits, spread evenly over the list (default: all)"
    )
    parser.add_argument("--names", nargs="*", default=None, help="portrait stems, e.g. 002_03")
    parser.add_argument("--size", type=int, default=512, help="texture size (default 512)")
    parser.add_argument("--flame", default=None)
    add_check_argument(parser)
    args = parser.parse_args()

    from facesmith.inference.images import load_photo, to_working
    from facesmith.inference.pipeline import Reconstructor
    from facesmith.inference.texture.albedo import TextureBaker
    from facesmith.inference.texture.colour import delta_e76

    model = load_bench_model(args.flame)
    paths = sorted(p for p in SHARED_FACES.iterdir() if p.suffix.lower() == ".jpg")
    if args.names:
        paths = [p for p in paths if p.stem in set(args.names)]
    elif args.faces:  # spread over the list (both photos of a person stay together), not its start
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, min(args.faces, len(paths))).round().astype(int)]
    rec = Reconstructor(pipeline_options(args.flame), model)
    bakers = {"on": TextureBaker(model, args.size), "off": TextureBaker(model, args.size, colour_constancy=False)}
    if bakers["on"].colour_prior is None:
        raise SystemExit(
            "bench/skin_tone.py: assets/colour_prior.npz is missing (python -m facesmith.training.colour_prior)"
        )
    errors = {m: {v: [] for v in VARIANTS} for m in bakers}
    grey_errors = {m: [] for m in bakers}
    cues: dict[str, int] = {}
    t0 = time.perf_counter()
    for path in paths:
        fit, photo = rec.fit([path]).photos[0], load_photo(path)
        x = to_working(fit.model_landmarks68_px, photo.scale)[:, 0]
        reference = {m: face_median(b.photo_texture(photo.rgb, photo.scale, fit)) for m, b in bakers.items()}
        for name, (kelvin, ev, side) in VARIANTS.items():
            rgb = relight(photo.rgb, kelvin, ev, side, (float(x.min()), float(x.max())))
            for m, baker in bakers.items():
                texture = baker.photo_texture(rgb, photo.scale, fit)
                errors[m][name].append(float(delta_e76(face_median(texture), reference[m])))
                if m == "on":
                    cues[" + ".join(texture.cues)] = cues.get(" + ".join(texture.cues), 0) + 1
        for m, baker in bakers.items():  # the same photo in black and white, against its colour bake
            texture = baker.photo_texture(greyscale(photo.rgb), photo.scale, fit)
            grey_errors[m].append(float(delta_e76(face_median(texture), reference["on"])))
        row = "  ".join(f"{v} {errors['off'][v][-1]:.1f}->{errors['on'][v][-1]:.1f}" for v in VARIANTS)
        row += f"  grey {grey_errors['off'][-1]:.1f}->{grey_errors['on'][-1]:.1f}"
        print(f"{path.stem}: {row}", flush=True)
    pooled = {m: np.concatenate([errors[m][v] for v in VARIANTS]) for m in bakers}
    stats = {m: (float(np.median(e)), float(np.percentile(e, 90))) for m, e in pooled.items()}
    per_variant = {v: {m: round(float(np.median(errors[m][v])), 2) for m in bakers} for v in VARIANTS}
    for v, row in per_variant.items():
        print(f"{v:12s} median dE without {row['off']:6.2f}  with {row['on']:6.2f}")
    grey = {m: (float(np.median(e)), float(np.percentile(e, 90))) for m, e in grey_errors.items()}
    print(f"{'black&white':12s} median dE grey albedo {grey['off'][0]:6.2f}  skin model's colour {grey['on'][0]:6.2f}")
    print(f"cues used: {cues}; {len(paths)} portraits in {time.perf_counter() - t0:.0f} s")
    kind = OWN_BAKE + "; invariance to re-lighting the same photo"
    goals = [
        Goal("relit_delta_e_median", stats["on"][0], "<=", 3.0, round(stats["off"][0], 2), "without", kind),
        Goal("relit_delta_e_p90", stats["on"][1], "<=", 6.0, round(stats["off"][1], 2), "without", kind),
        Goal(
            "black_and_white_delta_e_median",
            grey["on"][0],
            "<=",
            GREY_GOAL,
            round(grey["off"][0], 2),
            "grey albedo",
            OWN_BAKE + "; the photo's colour bake vs its black-and-white copy's",
        ),  # fmt: skip
    ]
    finish(
        {
            "portraits": len(paths),
            "size": args.size,
            "per_variant": per_variant,
            "cues": cues,
            "black_and_white": {m: [round(v, 2) for v in g] for m, g in grey.items()},
        },
        goals,
        not args.no_check,
    )


if __name__ == "__main__":
    main()
