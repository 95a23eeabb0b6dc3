"""The SH light over a face, fitted to its skin under a prior on how natural light varies (no bpy, no torch).

A free least-squares fit of 9 SH coefficients per channel also explains what is not light: a beard, glasses,
the edge of hair, or, on a blurry photo, skin the skin test missed. Its second-order terms then darken the
shading where those were, and the albedo (colour ÷ shading) gets pale blotches there. The prior
(`assets/light_prior.npz`, built by `python -m facesmith.training.light_prior` from the CC0 HDRIs in the bpy
wheel) is a Gaussian over the 8 higher-order coefficients divided by the constant one, for environments that
light the face. The fit is its MAP: the data term counts as LIGHT_PRIOR_TEXELS independent texels however many
skin texels there are, since what the SH cannot explain (albedo, hair edges) is correlated over large patches
of the face, not independent per texel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PRIOR_FILE = Path(__file__).resolve().parents[2] / "assets" / "light_prior.npz"
# Effective independent observations in the skin texels (see the module docstring). Chosen on the in-model
# renders (bench/textures.py: the side and top lights keep their PSNR) and by looking at UTKFace crops with
# glasses and beards (the blotches go); a larger value trusts the data more.
LIGHT_PRIOR_TEXELS = 300.0


@dataclass(frozen=True)
class LightPrior:
    mean: np.ndarray  # (8,) SH coefficients 1..8 over coefficient 0, luminance
    cov: np.ndarray  # (8, 8)

    @staticmethod
    def load(path: Path = PRIOR_FILE) -> LightPrior | None:
        if not path.is_file():
            return None
        with np.load(path) as data:
            return LightPrior(data["mean"].astype(np.float64), data["cov"].astype(np.float64))

    def penalty_rows(self, constant: float) -> tuple[np.ndarray, np.ndarray]:
        """(8, 9) rows A and (8,) targets b with ‖A x − b‖² the prior's −2 log density of SH x (9,) whose constant
        coefficient is about `constant` (the ratio is linearised there)."""
        whiten = np.linalg.cholesky(np.linalg.inv(self.cov)).T  # whitenᵀ whiten = cov⁻¹
        ratio = np.hstack([-self.mean[:, None], np.eye(8)]) / constant  # x[1:] / x0 − mean, x0 ≈ constant
        return whiten @ ratio, np.zeros(8)


def fit_sh(basis: np.ndarray, colour: np.ndarray, prior: LightPrior | None) -> np.ndarray:
    """(9, 3) SH light: per channel, least squares of basis (N, 9) against colour (N, 3), under `prior` if given."""
    sh, *_ = np.linalg.lstsq(basis, colour, rcond=None)
    if prior is None or len(basis) < 10:
        return sh
    residual = colour - basis @ sh
    for c in range(colour.shape[1]):
        sigma = max(float(np.std(residual[:, c])), 1e-6)
        if sh[0, c] <= 1e-6:  # an unlit channel: no shape to regularise
            continue
        weight = np.sqrt(LIGHT_PRIOR_TEXELS / len(basis)) / sigma
        rows, targets = prior.penalty_rows(float(sh[0, c]))
        design = np.vstack([weight * basis, rows])
        sh[:, c], *_ = np.linalg.lstsq(design, np.concatenate([weight * colour[:, c], targets]), rcond=None)
    return sh
