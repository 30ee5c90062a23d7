"""The model family. Every model maps [B, 2, 14, 14] to (comparison logits [B, 2], digit logits
[B, 2, 10]); the digit logits are the auxiliary output."""

from __future__ import annotations

import torch
from torch import nn

from models.config import Config

SIZE = 14  # input side; each conv layer is followed by a 2x2 max-pool: 14 -> 7 -> 3 -> 1


def conv_stack(in_channels: int, config: Config) -> tuple[nn.Sequential, int]:
    """Conv layers of width nb_filters * 2**i, each with (batch norm,) ReLU and max-pool."""
    layers: list[nn.Module] = []
    channels, side = in_channels, SIZE
    for i in range(config.conv_layers):
        width = config.nb_filters * 2**i
        k = config.kernel_size
        layers.append(nn.Conv2d(channels, width, k, padding=k // 2, bias=not config.batch_norm))
        if config.batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        channels, side = width, side // 2
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels * side * side


class Dropout(nn.Dropout):
    """nn.Dropout that draws its masks from `generator` where one is set: a net in training
    draws from its own stream, never from the global one that other nets share."""

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is None:
            return super().forward(x)
        if not self.training or self.p == 0.0:
            return x
        mask = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.p
        return x * mask / (1.0 - self.p)


def dense(n_in: int, n_out: int, config: Config) -> nn.Sequential:
    """Linear -> (batch norm) -> ReLU -> dropout."""
    layers: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not config.batch_norm)]
    if config.batch_norm:
        layers.append(nn.BatchNorm1d(n_out))
    layers += [nn.ReLU(inplace=True), Dropout(config.dropout)]
    return nn.Sequential(*layers)


def digits_comparison(digit_logits: torch.Tensor) -> torch.Tensor:
    """Comparison logits from two digit distributions: P(a <= b) = sum over i <= j of pa_i pb_j.

    [B, 2, 10] -> [B, 2] as (log P(a > b), log P(a <= b)), so cross-entropy on them is the
    negative log-likelihood of the target under the digit posteriors.
    """
    # In fp32 whatever the autocast around it: in bf16, 1 - 1e-7 rounds to 1 and the log of
    # P(a > b) becomes -inf.
    with torch.autocast(digit_logits.device.type, enabled=False):
        p = digit_logits.float().softmax(dim=-1)
        upper = torch.ones(10, 10, device=p.device).triu()  # upper[i, j] = 1 where i <= j
        p_le = torch.einsum("bi,ij,bj->b", p[:, 0], upper, p[:, 1]).clamp(1e-7, 1 - 1e-7)
        return torch.stack([torch.log1p(-p_le), torch.log(p_le)], dim=1)


class LearnedHead(nn.Module):
    """An MLP on the two digit-logit vectors: [B, 2, 10] -> [B, 2]."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(20, config.hidden_units),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden_units, 2),
        )

    def forward(self, digit_logits: torch.Tensor) -> torch.Tensor:
        return self.net(digit_logits.flatten(1))


def comparison_head(config: Config) -> nn.Module | None:
    return LearnedHead(config) if config.head == "learned" else None


class Branch(nn.Module):
    """One digit [B, 1, 14, 14] -> its 10 class logits."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.features, n_features = conv_stack(1, config)
        self.hidden = dense(n_features, config.hidden_units, config)
        self.out = nn.Linear(config.hidden_units, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(self.features(x)))


class Siamese(nn.Module):
    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        n_branches = 1 if config.weight_sharing else 2
        self.branches = nn.ModuleList(Branch(config) for _ in range(n_branches))
        self.head = comparison_head(config)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        if self.config.weight_sharing:
            # Both digits in one batch through the one branch: [B*2, 1, 14, 14] -> [B, 2, 10].
            digits = self.branches[0](x.reshape(b * 2, 1, SIZE, SIZE)).view(b, 2, 10)
        else:
            digits = torch.stack([self.branches[i](x[:, i : i + 1]) for i in range(2)], dim=1)
        main = self.head(digits) if self.head is not None else digits_comparison(digits)
        return main, digits


class Flat(nn.Module):
    """mlp and cnn: both digits enter one trunk; the digit logits come from a side output."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        if config.family == "cnn":
            features, n_features = conv_stack(2, config)  # the two digits as input channels
            self.trunk = nn.Sequential(features, dense(n_features, config.hidden_units, config))
        else:
            self.trunk = nn.Sequential(
                nn.Flatten(),
                dense(2 * SIZE * SIZE, config.hidden_units, config),
                dense(config.hidden_units, config.hidden_units, config),
            )
        self.aux = nn.Linear(config.hidden_units, 20)
        self.main = nn.Linear(config.hidden_units, 2) if config.head == "learned" else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        digits = self.aux(h).view(-1, 2, 10)
        main = self.main(h) if self.main is not None else digits_comparison(digits)
        return main, digits


def build_model(config: Config) -> nn.Module:
    return Siamese(config) if config.family == "siamese" else Flat(config)


def parameter_count(config: Config) -> int:
    """Parameters of one net of `config`, counted on the meta device: no memory, a few ms."""
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(config).parameters())
