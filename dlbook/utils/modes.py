"""Module modes shared by tasks, metrics and scripts."""

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[None]:
    """net in eval mode inside the block, so BatchNorm uses (and does not update) its running statistics and
    dropout is off; its mode before is restored afterwards, also after an error."""
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)
