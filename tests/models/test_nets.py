from __future__ import annotations

import pytest
import torch

from models import FAMILIES, Config
from models.nets import Siamese, build_model, digits_comparison


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("head", ["learned", "digits"])
@pytest.mark.parametrize("conv_layers", [1, 3])
def test_output_shapes(family: str, head: str, conv_layers: int) -> None:
    config = Config(family=family, head=head, conv_layers=conv_layers, nb_filters=4)
    model = build_model(config).eval()
    main, digits = model(torch.randn(5, 2, 14, 14))
    assert main.shape == (5, 2)
    assert digits.shape == (5, 2, 10)


def test_weight_sharing_applies_one_branch_to_both_digits() -> None:
    torch.manual_seed(0)
    shared = build_model(Config(weight_sharing=True, nb_filters=8)).eval()
    separate = build_model(Config(weight_sharing=False, nb_filters=8)).eval()
    assert isinstance(shared, Siamese) and isinstance(separate, Siamese)
    assert len(shared.branches) == 1 and len(separate.branches) == 2
    n_branch = size(shared.branches[0])
    assert size(separate) - size(shared) == n_branch

    x = torch.randn(6, 2, 14, 14)
    with torch.no_grad():
        _, digits = shared(x)
        branch = shared.branches[0]
        assert torch.allclose(digits[:, 0], branch(x[:, 0:1]), atol=1e-5)
        assert torch.allclose(digits[:, 1], branch(x[:, 1:2]), atol=1e-5)
        # Without sharing, each digit goes through its own branch.
        _, digits = separate(x)
        assert torch.allclose(digits[:, 1], separate.branches[1](x[:, 1:2]), atol=1e-5)
        assert not torch.allclose(digits[:, 1], separate.branches[0](x[:, 1:2]), atol=1e-3)


def test_digits_head_is_the_probability_that_first_is_at_most_second() -> None:
    logits = torch.randn(4, 2, 10)
    p = logits.softmax(-1)
    expected = torch.tensor(
        [sum(p[b, 0, i] * p[b, 1, j] for i in range(10) for j in range(i, 10)) for b in range(4)]
    )
    out = digits_comparison(logits)
    assert torch.allclose(out[:, 1].exp(), expected, atol=1e-5)
    assert torch.allclose(out.exp().sum(1), torch.ones(4), atol=1e-5)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="family"):
        Config(family="transformer")
    with pytest.raises(ValueError, match="alpha"):
        Config(alpha=1.5)
    assert Config(**Config().to_dict()) == Config()


def size(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
