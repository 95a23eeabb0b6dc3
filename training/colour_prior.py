"""Build assets/colour_prior.npz: what the albedo's colour cues see at gain = 1 (inference/texture/colour.py).

The CC BY studio portraits (../shared/data/faces: one studio, one camera, even light) define the reference: each
portrait is fitted and de-lit as the pipeline does it, without colour constancy, and its de-lit skin colour and
eye-white colour are collected in log linear RGB. Their mean and covariance between people are the skin and
sclera models (the sclera's with the pixel-count noise taken out, since the pipeline adds each photo's own).
The scene's log-luminance quantiles around the head give the studio's exposure (`scene_keys`). The light prior is
analytic (colour temperature 3000–7500 K in mired steps, exposure σ = 1 EV); the scene's colour spread is a natural
scene's shades-of-grey error, not measurable on one studio's grey backdrop.

Usage: python -m facesmith.training.colour_prior [--faces DIR] [-o assets/colour_prior.npz] [--measurements NPZ]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from ..inference import texture
from ..inference.options import DEFAULTS
from ..inference.pipeline import Reconstructor
from ..inference.texture import colour
from ..inference.texture.albedo import TextureBaker

# Shades of grey on natural scenes misses the light's colour by a few degrees of RGB angle (Finlayson & Trezzi
# 2004; Gijsenij et al. 2011 survey); outside a tight crop of a head (hair, clothes, walls of one colour) more:
# 0.15 in log chromaticity per channel, judged, not measured here.
SCENE_CHROMA_SIGMA = 0.15
FLOOR = 1e-4  # smallest variance kept in a covariance's eigenvalues


def _psd(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return vectors @ np.diag(np.maximum(values, FLOOR)) @ vectors.T


def measure(paths: list[Path]) -> dict[str, np.ndarray]:
    """Per portrait: log de-lit skin colour, log eye-white colour (NaN where too few pixels), eye-white pixel count,
    the scene's log-luminance quantiles (colour.scene_colour; NaN where there is too little scene)."""
    skins, scleras, counts, scenes = [], [], [], []
    with Reconstructor(DEFAULTS) as rec:
        model = rec.model
        baker = TextureBaker(model, 512, colour_constancy=False)
        for path in paths:
            result, photos = rec._fit([path], lambda *a: None, None)
            photo, fit = photos[0], result.photos[0]
            tex = baker.photo_texture(photo.rgb, photo.scale, fit)
            linear = texture.maps.srgb_to_linear(photo.rgb / 255.0).astype(np.float32)
            context = baker.colour_context(linear, fit, photo.scale)
            sclera = context.sclera
            scene = context.scene
            ok_scene = scene.share >= colour.SCENE_MIN_SHARE
            scenes.append(scene.keys if ok_scene else np.full(len(colour.SCENE_QUANTILES), np.nan))
            skins.append(np.log(tex.skin_colour))
            ok = len(sclera) >= colour.SCLERA_MIN_PIXELS
            scleras.append(np.log(colour.robust_colour(sclera)) if ok else np.full(3, np.nan))
            counts.append(len(sclera))
            print(
                f"{path.name}: skin {np.exp(skins[-1]).round(3)} sclera {np.exp(scleras[-1]).round(3)} ({len(sclera)} px)"
            )
    return {
        "skins": np.array(skins),
        "scleras": np.array(scleras),
        "counts": np.array(counts),
        "scenes": np.array(scenes),
    }


def build(skins: np.ndarray, scleras: np.ndarray, counts: np.ndarray, scenes: np.ndarray) -> colour.ColourPrior:
    ok = np.isfinite(scleras).all(axis=1)
    joint = np.concatenate([skins[ok], scleras[ok]], axis=1)
    noise = np.zeros((6, 6))
    noise[3:, 3:] = np.mean([colour.measurement_cov(int(n)) for n in counts[ok]], axis=0)
    grey = np.ones((3, 3)) / 3
    # The skin locus bends: after the straight tone axis, what is left follows t² (least squares per row).
    axis = np.linalg.eigh(np.cov(joint.T))[1][:, -1]
    tone = (joint - joint.mean(0)) @ axis
    bent = tone**2 - np.mean(tone**2)
    left = joint - joint.mean(0) - np.outer(tone, axis)
    curve = bent @ left / (bent @ bent)
    straight = joint - np.outer(bent, curve)
    return colour.ColourPrior(
        joint_mean=straight.mean(0), joint_cov=_psd(np.cov(straight.T) - noise),
        tone_curve=curve, tone_t2=float(np.mean(tone**2)),
        scene_cov=SCENE_CHROMA_SIGMA**2 * (np.eye(3) - grey) + FLOOR * np.eye(3),
        light_cov=colour.light_covariance(),
        scene_keys=np.nanmean(scenes, axis=0),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/faces")
    parser.add_argument("-o", "--out", type=Path, default=colour.PRIOR_FILE)
    parser.add_argument(
        "--measurements", type=Path, help="an .npz of the per-portrait colours: read if it exists, else written"
    )
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.faces.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if args.measurements and args.measurements.is_file():
        with np.load(args.measurements) as data:
            measured = dict(data)
    else:
        measured = measure(paths)
        if args.measurements:
            np.savez(args.measurements, **measured)
    prior = build(**measured)
    skins, scleras = measured["skins"], measured["scleras"]
    digest = hashlib.sha256("".join(sorted(p.name for p in paths)).encode()).hexdigest()
    prior.save(args.out, source=f"{len(paths)} CC BY studio portraits ({args.faces.name}), names sha256 {digest}")
    sd = np.sqrt(np.diag(prior.joint_cov))
    ok = np.isfinite(scleras).all(axis=1)
    print(
        f"wrote {args.out}: skin {np.exp(prior.joint_mean[:3]).round(3)} (log sd {sd[:3].round(2)}), "
        f"eye whites {np.exp(prior.joint_mean[3:]).round(3)} (log sd {sd[3:].round(2)}), "
        f"skin-eye-white luminance correlation {np.corrcoef(skins[ok, 1], scleras[ok, 1])[0, 1]:.2f}"
    )


if __name__ == "__main__":
    main()
