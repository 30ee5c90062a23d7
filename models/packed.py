"""K nets of one configuration as one network: the same K nets, trained in one pass.

Every layer holds its K members' tensors stacked on a leading K dimension, so that member k's
weights are `tensor[k]` and its state dict is the ordinary net's (pack/unpack). Activations
run as [N, K * C, ...]: member k owns channels k*C .. (k+1)*C - 1, so a convolution is one
grouped convolution (groups=K), batch norm over K * C channels keeps each member's own
statistics, and a linear layer is one batched matmul. Nothing couples the members: no
operation mixes two members' channels, and each member's dropout draws from its own stream.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.config import Config
from models.nets import SIZE, Dropout, Flat, Siamese, build_model, digits_comparison


class PackedConv(nn.Module):
    def __init__(self, convs: Sequence[nn.Conv2d]) -> None:
        super().__init__()
        first = convs[0]
        self.k, self.padding = len(convs), first.padding
        self.weight = nn.Parameter(torch.stack([c.weight.detach() for c in convs]))
        bias = [c.bias.detach() for c in convs if c.bias is not None]
        self.bias = nn.Parameter(torch.stack(bias)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, K*Cin, H, W] -> [N, K*Cout, H, W]
        w = self.weight.flatten(0, 1)  # [K*Cout, Cin, kh, kw]
        b = self.bias.flatten() if self.bias is not None else None
        return F.conv2d(x, w, b, padding=self.padding, groups=self.k)


class PackedLinear(nn.Module):
    def __init__(self, linears: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.k = len(linears)
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]))
        bias = [m.bias.detach() for m in linears if m.bias is not None]
        self.bias = nn.Parameter(torch.stack(bias)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, K*in] -> [N, K*out]
        n = x.shape[0]
        x = x.reshape(n, self.k, -1).transpose(0, 1)  # [K, N, in]
        if self.bias is not None:
            y = torch.baddbmm(self.bias[:, None], x, self.weight.transpose(1, 2))
        else:
            y = torch.bmm(x, self.weight.transpose(1, 2))
        return y.transpose(0, 1).reshape(n, -1)  # [K, N, out] -> [N, K*out]


class PackedBatchNorm(nn.Module):
    """Batch norm over K * C channels: each member's channels keep their own statistics,
    updated as the member's own nn.BatchNorm would update them."""

    def __init__(self, norms: Sequence[nn.BatchNorm1d | nn.BatchNorm2d]) -> None:
        super().__init__()
        first = norms[0]
        self.eps, self.momentum = first.eps, first.momentum
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in norms]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in norms]))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, torch.stack([getattr(m, name).detach() for m in norms]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, K*C, ...]
        if self.training:
            self.num_batches_tracked.add_(1)
        # Views of the [K, C] buffers: F.batch_norm updates the running statistics in place.
        return F.batch_norm(
            x,
            self.running_mean.view(-1),
            self.running_var.view(-1),
            self.weight.flatten(),
            self.bias.flatten(),
            self.training,
            self.momentum,
            self.eps,
        )


class PackedDropout(nn.Module):
    """Member k's mask is drawn from member k's generator with the shape its own net would
    draw ([N, F]), so a member's masks are the same packed or alone."""

    def __init__(self, p: float, k: int) -> None:
        super().__init__()
        self.p, self.k = p, k
        self.generators: Sequence[torch.Generator] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, K*F]
        if not self.training or self.p == 0.0:
            return x
        if self.generators is None:
            raise RuntimeError("a packed net trains with its members' generators (set_generators)")
        n, f = x.shape[0], x.shape[1] // self.k
        masks = [torch.rand(n, f, generator=g, device=x.device) >= self.p for g in self.generators]
        return x * torch.stack(masks, 1).reshape(n, -1) / (1.0 - self.p)


LEAVES = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, Dropout)


def packed_leaf(modules: Sequence[nn.Module]) -> nn.Module:
    first = modules[0]
    if isinstance(first, nn.Conv2d):
        return PackedConv(modules)  # type: ignore[arg-type]
    if isinstance(first, nn.Linear):
        return PackedLinear(modules)  # type: ignore[arg-type]
    if isinstance(first, Dropout):
        return PackedDropout(first.p, len(modules))
    return PackedBatchNorm(modules)  # type: ignore[arg-type]


class PackedNet(nn.Module):
    """K trained or new nets of one Config as one module. Its parameters and buffers have the
    names of one net's, each with the K members stacked first; `unpack` gives the K nets
    back. forward: [K, B, 2, 14, 14] -> (comparison logits [K, B, 2], digit logits
    [K, B, 2, 10]), member k reading x[k]."""

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        super().__init__()
        self.config: Config = nets[0].config
        self.k = len(nets)
        # A copy of the first net whose leaves are replaced by packed ones: the containers
        # (and so the names of every tensor) stay those of one net.
        self.net = copy.deepcopy(nets[0])
        trees = [dict(n.named_modules()) for n in nets]
        for name, module in list(self.net.named_modules()):
            if isinstance(module, LEAVES):
                parent, _, attr = name.rpartition(".")
                owner = self.net.get_submodule(parent) if parent else self.net
                setattr(owner, attr, packed_leaf([t[name] for t in trees]))
        self.channels_last = False

    def set_generators(self, generators: Sequence[torch.Generator]) -> None:
        """Each member's dropout stream (member k draws from generators[k])."""
        for m in self.modules():
            if isinstance(m, PackedDropout):
                m.generators = generators

    def to_channels(self, x: torch.Tensor) -> torch.Tensor:
        """[K, N, C, H, W] -> [N, K*C, H, W], member k's images in its own channels."""
        x = x.transpose(0, 1).reshape(x.shape[1], -1, SIZE, SIZE)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def from_flat(self, y: torch.Tensor) -> torch.Tensor:
        """[N, K*F] -> [K, N, F]."""
        return y.view(y.shape[0], self.k, -1).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, b = x.shape[:2]
        net = self.net
        if isinstance(net, Siamese):
            if self.config.weight_sharing:
                # Both digits of every pair through the one branch: [K, 2B, 14, 14].
                images = self.to_channels(x.reshape(k, b * 2, 1, SIZE, SIZE))
                digits = self.from_flat(net.branches[0](images)).reshape(k, b, 2, 10)
            else:
                sides = [self.from_flat(net.branches[i](self.to_channels(x[:, :, i : i + 1])))
                         for i in range(2)]  # fmt: skip
                digits = torch.stack(sides, 2)  # [K, B, 2, 10]
            if net.head is None:
                main = digits_comparison(digits.reshape(k * b, 2, 10)).view(k, b, 2)
            else:  # the learned head on both digits' logits: [B, K*20] -> [K, B, 2]
                flat = digits.reshape(k, b, 20).transpose(0, 1).reshape(b, -1)
                main = self.from_flat(net.head.net(flat))
            return main, digits
        assert isinstance(net, Flat)
        h = net.trunk(self.to_channels(x))  # [B, K*H]
        digits = self.from_flat(net.aux(h)).reshape(k, b, 2, 10)
        if net.main is None:
            main = digits_comparison(digits.reshape(k * b, 2, 10)).view(k, b, 2)
        else:
            main = self.from_flat(net.main(h))
        return main, digits

    def unpack(self) -> list[nn.Module]:
        """The K members as ordinary nets of the config (on this module's device, in the mode
        this module is in), each with its own weights and batch-norm statistics."""
        state = self.net.state_dict()
        device = next(self.parameters()).device
        nets = []
        for i in range(self.k):
            net = build_model(self.config).to(device)
            net.load_state_dict({name: t[i].clone() for name, t in state.items()})
            nets.append(net.train(self.training))
        return nets


def pack(config: Config, nets: Sequence[nn.Module]) -> PackedNet:
    if any(n.config != nets[0].config for n in nets) or nets[0].config != config:
        raise ValueError("a pack holds nets of one configuration")
    return PackedNet(nets)
