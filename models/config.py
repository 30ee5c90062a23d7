"""The one configuration of a model and its training, sampled by the search."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

FAMILIES = ("mlp", "cnn", "siamese")
HEADS = ("learned", "digits")
MAX_ENSEMBLE = 10


@dataclass(frozen=True)
class Config:
    family: str = "siamese"  # mlp | cnn | siamese
    nb_filters: int = 32  # width of the first conv layer; doubles with each further layer
    conv_layers: int = 2  # 1-3; each halves the 14x14 map
    kernel_size: int = 3
    hidden_units: int = 128
    dropout: float = 0.2
    batch_norm: bool = True
    weight_sharing: bool = True  # siamese: one branch for both digits, else one per digit
    head: str = "digits"  # learned: an MLP on both digit logits; digits: P(first <= second)
    alpha: float = 0.5  # loss = alpha * main + (1 - alpha) / 2 * (aux_1 + aux_2)
    lr: float = 2e-3
    batch_size: int = 64
    weight_decay: float = 1e-4
    epochs: int = 20  # the search's budget per trial (search.study.settings takes it from here)
    # Random shifts, rotations and swaps of the two digits. On by default, and not a search
    # dimension: it gains on validation pairs, yet a search that sampled it pruned it at the
    # warm-up (augmented nets start slower) and never came back (docs/protocol.md, Models).
    augment: bool = True
    # Nets of this configuration trained apart (seeds of their own) whose posteriors are
    # averaged (models/ensemble.py): a search trial (--trial-nets), the final evaluation's
    # selection and default (--ensemble), a saved model.
    ensemble: int = 1

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if not 1 <= self.conv_layers <= 3:
            raise ValueError(f"conv_layers must be 1-3 (14x14 inputs), got {self.conv_layers}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if min(self.nb_filters, self.hidden_units, self.kernel_size) < 1:
            raise ValueError("nb_filters, hidden_units and kernel_size must be at least 1")
        if not 0.0 <= self.dropout < 1.0:  # also refuses NaN
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (0.0 < self.lr < math.inf and 0.0 <= self.weight_decay < math.inf):
            raise ValueError(
                f"lr must be positive and weight_decay non-negative, both finite, "
                f"got {self.lr} and {self.weight_decay}"
            )
        if not 1 <= self.ensemble <= MAX_ENSEMBLE:
            raise ValueError(f"ensemble must be 1-{MAX_ENSEMBLE} nets, got {self.ensemble}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
