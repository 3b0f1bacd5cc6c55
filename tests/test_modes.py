"""evaluating(): eval mode inside the block, the module's own mode back after it, even on an error."""

import pytest
from torch import nn

from plait.modes import evaluating


@pytest.mark.parametrize("training", [True, False])
def test_the_mode_comes_back_whatever_happens_inside(training: bool) -> None:
    module = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)
    with evaluating(module):
        assert not module.training and not module[1].training
    assert module.training is training and module[1].training is training
    with pytest.raises(RuntimeError), evaluating(module):
        raise RuntimeError("inside")
    assert module.training is training
