"""A compact ResNet-style CNN: a face crop -> dense landmarks (crop units), their log σ, and β.

About 110 M multiply-adds at 128² (the issue's budget: ≤ 15 ms on 2 CPU cores through onnxruntime). The last
feature map (4×4) is flattened, not pooled: coordinates need to know where things are."""

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
        layers: list[nn.Module] = [conv_bn(3, widths[0], 3, 2)]
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(Block(cin, cout, 2))
            if i < len(widths) - 2:  # the last, 4×4 stage has one block
                layers.append(Block(cout, cout, 1))
        layers.append(conv_bn(widths[-1], 64, 1))
        self.features = nn.Sequential(*layers)
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
