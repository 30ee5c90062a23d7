from __future__ import annotations

import pytest

from data import Source, make_splits
from models import Run


@pytest.fixture(scope="module")
def runs(mnist5k: Source) -> list[Run]:
    """Two rounds' data of their own, as the final evaluation packs them."""
    out = []
    for seed in (11, 12):
        s = make_splits(mnist5k, seed=seed, n_train=300, n_val=100)
        out.append(Run(s.train, {"val": s.val}, s.mean, s.std, seed))
    return out
