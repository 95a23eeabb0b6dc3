"""Compact CNNs: a face crop -> dense landmarks (crop units), their log σ, and β. Two heads on one backbone:

- `DenseNet` (head "fc", the shipped network): the last feature map (4×4) is flattened into a fully
  connected layer that regresses every coordinate. About 110 M multiply-adds at 128².
- `HeatmapNet` (head "heatmap"): the backbone's stride-32, -16 and -8 maps are merged top-down
  (FPN) into a stride-4 map, a 1×1 convolution gives one heatmap per landmark, and the point is its
  soft-argmax (integral regression, Sun et al. 2018). The outputs are translation-equivariant — a point is
  found where its evidence is, by the same filters anywhere in the crop — instead of an FC layer that must
  learn every position of every point separately; and it is differentiable with sub-cell accuracy. Each
  cell also regresses an offset (shared by all landmarks, in cells), so points are not held to the cell
  centres' hull (a few neck/scalp points leave the crop). σ comes from the heatmap's own spread plus a learnt
  per-landmark bias; β from the pooled stride-32 features. About 190 M multiply-adds at 128².

Both give the same outputs (points (N, L, 2) crop units, log σ (N, L), β (N, n_shape)), so the ONNX contract
and `inference.landmarks.dense` are unchanged."""

from __future__ import annotations

import torch
from torch import nn

# ImageNet-like statistics would do as well; these are of the synthetic crops (measured once, rounded).
INPUT_MEAN = (0.45, 0.40, 0.37)
INPUT_STD = (0.27, 0.25, 0.25)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@torch.no_grad()
def load_folded(
    net: nn.Module, pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]], folded: list[tuple[torch.Tensor, torch.Tensor]],
    crops: torch.Tensor,
) -> None:  # fmt: skip
    """Exported convolutions (weight, bias) whose batch norms the exporter folded in, back into `net`'s conv_bn
    `pairs`: each convolution takes the folded weight and its batch norm is set to reproduce the folded layer in eval
    mode, re-centred on the statistics of `crops` (training data), so that training-mode batch statistics change
    little at the start. ValueError where a weight's shape differs from its convolution's."""
    for i, ((conv, bn), (weight, bias)) in enumerate(zip(pairs, folded, strict=True)):
        if weight.shape != conv.weight.shape:
            raise ValueError(f"convolution {i} is {tuple(weight.shape)}, not {tuple(conv.weight.shape)}")
        conv.weight.copy_(weight)
        bn.weight.fill_(1.0)
        bn.bias.copy_(bias)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)
    # Re-centre: BN(z) = γ(z − μ)/σ + β equals z + b for γ = σ, β = μ + b with μ, σ of this data.
    seen: dict[nn.BatchNorm2d, torch.Tensor] = {}
    hooks = [bn.register_forward_hook(lambda m, i, o: seen.__setitem__(m, i[0])) for _, bn in pairs]
    was = net.training
    net.eval()
    net(crops)
    for hook in hooks:
        hook.remove()
    for _, bn in pairs:
        z = seen[bn]
        mu, sd = z.mean(dim=(0, 2, 3)), z.var(dim=(0, 2, 3)).add(bn.eps).sqrt()
        bias = bn.bias.clone()
        bn.weight.copy_(sd)
        bn.bias.copy_(mu + bias)
        bn.running_mean.copy_(mu)
        bn.running_var.copy_(sd**2 - bn.eps)
    net.train(was)


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, 1, act=False))
        self.skip = nn.Identity() if cin == cout and stride == 1 else conv_bn(cin, cout, 1, stride, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class DenseNet(nn.Module):
    """Outputs: points (N, L, 2) crop units, log σ (N, L), β (N, n_shape)."""

    def __init__(self, n_landmarks: int, n_shape: int, widths: tuple[int, ...] = (16, 32, 64, 128, 192),
                 input_size: int = 128, hidden: int = 512) -> None:  # fmt: skip
        super().__init__()
        self.n_landmarks, self.n_shape = n_landmarks, n_shape
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(INPUT_STD).view(1, 3, 1, 1))
        self.features = backbone(widths)
        side = input_size // 2 ** len(widths)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * side * side, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, n_landmarks * 3 + n_shape),
        )  # fmt: skip

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.head(self.features((image - self.mean) / self.std))
        n, count = image.shape[0], self.n_landmarks
        points = out[:, : 2 * count].reshape(n, count, 2)
        log_sigma = out[:, 2 * count : 3 * count].clamp(-7.0, 1.0)
        return points, log_sigma, out[:, 3 * count :]


def gaussian_nll(points: torch.Tensor, log_sigma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per landmark, an isotropic 2D Gaussian's negative log-likelihood (Wood et al. 2022), mean over all."""
    sq = ((points - target) ** 2).sum(-1)
    return (0.5 * sq * torch.exp(-2 * log_sigma) + 2 * log_sigma).mean()


def backbone(widths: tuple[int, ...]) -> nn.Sequential:
    """The shipped network's feature extractor: stride 2 stem, a stage of two blocks per stride 4..16, one block
    at the last stride, a 1×1 to 64 channels. HeatmapNet reads its stages, so one set of weights fits both."""
    layers: list[nn.Module] = [conv_bn(3, widths[0], 3, 2)]
    for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(Block(cin, cout, 2))
        if i < len(widths) - 2:  # the last, 4×4 stage has one block
            layers.append(Block(cout, cout, 1))
    layers.append(conv_bn(widths[-1], 64, 1))
    return nn.Sequential(*layers)


class HeatmapNet(nn.Module):
    """Integral regression at stride 4 or 8 (see the module's docstring). Outputs as DenseNet's."""

    def __init__(self, n_landmarks: int, n_shape: int, widths: tuple[int, ...] = (16, 32, 64, 128, 192),
                 input_size: int = 128, decoder: int = 64, stride: int = 4) -> None:  # fmt: skip
        super().__init__()
        if len(widths) != 5 or stride not in (4, 8):
            raise ValueError("the heatmap head needs 5 stages (strides 2 to 32) and stride 4 or 8")
        self.n_landmarks, self.n_shape = n_landmarks, n_shape
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(INPUT_STD).view(1, 3, 1, 1))
        self.features = backbone(widths)
        # Outputs of features[i] at strides 4, 8, 16 (after each stage's second block) and 32 (the 1×1).
        self.taps = {4: 2, 8: 4, 16: 6, 32: 8}
        self.strides = [s for s in (4, 8, 16) if s >= stride]
        chans = {4: widths[1], 8: widths[2], 16: widths[3]}
        self.top = conv_bn(64, decoder, 1, act=False)
        self.lateral = nn.ModuleDict({str(s): conv_bn(chans[s], decoder, 1, act=False) for s in self.strides})
        self.smooth = nn.ModuleDict({str(s): conv_bn(decoder, decoder, 3) for s in self.strides})
        self.heatmap = nn.Conv2d(decoder, n_landmarks, 1)
        self.offset = nn.Conv2d(decoder, 2, 1)  # per cell, in cells, shared by the landmarks
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.sigma_bias = nn.Parameter(torch.zeros(n_landmarks))
        self.shape_head = nn.Linear(64, n_shape) if n_shape else None
        side = input_size // stride
        # Cell centres in crop units: (0, 0) the crop's centre, ±1 its edges (as to_crop_units).
        centres = (torch.arange(side, dtype=torch.float32) + 0.5) * 2 / side - 1
        self.register_buffer("grid_x", centres.view(1, 1, side))
        self.register_buffer("grid_y", centres.view(1, side, 1))
        self.cell = 2.0 / side

    def forward(self, image: torch.Tensor, heatmaps: bool = False):
        """(points, log σ, β); with `heatmaps` (training) also the log-probabilities (N, L, H·W) for
        heatmap_loss. The ONNX export takes the default."""
        x = (image - self.mean) / self.std
        taps = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            taps[i] = x
        deepest = taps[self.taps[32]]
        top = self.top(deepest)
        for s in sorted(self.strides, reverse=True):  # 16, 8(, 4): top-down, nearest upsampling
            top = nn.functional.interpolate(top, scale_factor=2.0, mode="nearest")
            top = self.smooth[str(s)](top + self.lateral[str(s)](taps[self.taps[s]]))
        n, count = image.shape[0], self.n_landmarks
        log_prob = torch.log_softmax(self.heatmap(top).flatten(2), dim=-1)  # (N, L, H·W)
        prob = log_prob.exp()
        off = self.offset(top) * self.cell  # (N, 2, H, W) crop units
        px = (self.grid_x + off[:, 0]).flatten(1)  # (N, H·W)
        py = (self.grid_y + off[:, 1]).flatten(1)
        coords = torch.stack([px, py, px * px + py * py], dim=-1)  # (N, H·W, 3)
        moments = torch.bmm(prob, coords)  # (N, L, 3): E[x], E[y], E[x² + y²]
        points = moments[..., :2]
        # The heatmap's spread (crop units², mean of the two axes) sets σ, with a learnt per-landmark scale.
        var = 0.5 * (moments[..., 2] - (points**2).sum(-1)).clamp(min=0)
        log_sigma = (0.5 * torch.log(var + 1e-6) + self.sigma_bias).clamp(-7.0, 1.0)
        if self.shape_head is None:
            shape = points.new_zeros(n, 0)
        else:
            shape = self.shape_head(deepest.mean(dim=(2, 3)))
        if heatmaps:
            return points, log_sigma.view(n, count), shape, log_prob
        return points, log_sigma.view(n, count), shape

    def heatmap_loss(self, log_prob: torch.Tensor, target: torch.Tensor, spread_cells: float = 1.0) -> torch.Tensor:
        """Cross-entropy of the heatmaps against a Gaussian (σ `spread_cells` cells) at each true point, mean
        over landmarks: per-cell supervision, which the soft-argmax's gradient alone gives only weakly while the
        heatmaps are diffuse (Sun et al. 2018; Nibali et al. 2018's DSNT regularisation)."""
        # The target is separable (a Gaussian on the grid is the product of one per axis), so it is never built
        # as an (N, L, H, W) tensor: CE = −Σ_hw qy_h qx_w log p_hw.
        s2 = 2 * (spread_cells * self.cell) ** 2
        qx = torch.softmax(-((self.grid_x.view(1, 1, -1) - target[..., 0:1]) ** 2) / s2, dim=-1)  # (N, L, W)
        qy = torch.softmax(-((self.grid_y.view(1, 1, -1) - target[..., 1:2]) ** 2) / s2, dim=-1)  # (N, L, H)
        side = qx.shape[-1]
        return -torch.einsum("nlhw,nlh,nlw->nl", log_prob.view(*log_prob.shape[:2], side, side), qy, qx).mean()


def point_distance_loss(points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance (crop units): the validation metric itself, robust like integral regression's
    L1 (Sun et al. 2018) and rotation-invariant."""
    return torch.sqrt(((points - target) ** 2).sum(-1) + 1e-8).mean()
