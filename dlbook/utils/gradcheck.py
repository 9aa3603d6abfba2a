"""Gradient checking (Hands-On Deep Learning Algorithms, ch. 1): autograd's gradient of a loss against central
differences (J(theta + eps) - J(theta - eps)) / (2 eps), one parameter element at a time, in float64, and their
relative error ||a - n|| / (||a|| + ||n||); below about 1e-7 the gradient is right."""

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from dlbook.errors import DlbookError


@dataclass
class GradientCheck:
    """The checked elements (`names`, e.g. "net.1.weight[3]"), their analytic and numeric gradients, the relative
    error over all of them, and how many elements the module has."""

    names: list[str]
    analytic: torch.Tensor
    numeric: torch.Tensor
    relative_error: float
    total_elements: int

    def worst(self, count: int = 3) -> str:
        """The elements of largest disagreement, for messages."""
        order = (self.analytic - self.numeric).abs().argsort(descending=True)[:count].tolist()
        return ", ".join(f"{self.names[i]}: analytic {self.analytic[i].item():.6g}, numeric "
                         f"{self.numeric[i].item():.6g}" for i in order)


@contextmanager
def in_float64(module: nn.Module):
    """The module's floating parameters and buffers in float64 for the block; afterwards the very tensors it had
    (parameters are put back as they were, buffers such as BatchNorm's running statistics untouched)."""
    parameters = {name: parameter.data for name, parameter in module.named_parameters()}
    buffers = {name: buffer.clone() for name, buffer in module.named_buffers()}
    module.double()
    try:
        yield
    finally:
        for name, parameter in module.named_parameters():
            parameter.data = parameters[name]
        for name, buffer in buffers.items():
            owner, _, leaf = name.rpartition(".")
            module.get_submodule(owner)._buffers[leaf] = buffer


def relative_error(analytic: torch.Tensor, numeric: torch.Tensor) -> float:
    denominator = analytic.norm() + numeric.norm()
    return 0.0 if denominator == 0 else ((analytic - numeric).norm() / denominator).item()


def check_gradients(module: nn.Module, loss: Callable[[], torch.Tensor], eps: float = 1e-6,
                    max_elements: int | None = None, seed: int = 0) -> GradientCheck:
    """Compare autograd's gradient of `loss()` (a closure computing a scalar from `module`'s parameters) with
    central differences, in float64: the module is converted for the check and given back as it was; the loss
    must compute in the parameters' dtype (cast its inputs with them). With `max_elements`, that many elements
    drawn uniformly (seeded) are checked instead of all of them (each costs two evaluations of the loss)."""
    named = [(name, parameter) for name, parameter in module.named_parameters() if parameter.requires_grad]
    if not named:
        raise DlbookError(f"{type(module).__name__} has no trainable parameters: there is no gradient to check.")
    sizes = [parameter.numel() for _, parameter in named]
    total = sum(sizes)
    chosen = torch.arange(total)
    if max_elements is not None and total > max_elements:
        chosen = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:max_elements].sort().values
    offsets = torch.tensor([0, *sizes]).cumsum(0)
    owners = torch.searchsorted(offsets, chosen, right=True) - 1
    with in_float64(module):
        parameters = [parameter for _, parameter in named]
        value = loss()
        if value.dtype != torch.float64:
            raise DlbookError(f"The loss computed in {value.dtype}, not float64: its inputs (or a constant it "
                              f"makes) were not cast with the parameters, so central differences would measure "
                              f"{value.dtype}'s rounding.")
        gradients = torch.autograd.grad(value, parameters, allow_unused=True)
        analytic = torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                              for p, g in zip(parameters, gradients)])[chosen]
        numeric = torch.empty_like(analytic)
        names = []
        with torch.no_grad():
            for k, (element, owner) in enumerate(zip(chosen.tolist(), owners.tolist())):
                name, parameter = named[owner]
                flat, index = parameter.view(-1), element - offsets[owner].item()
                names.append(f"{name}[{index}]" if parameter.numel() > 1 else name)
                original = flat[index].clone()
                flat[index] = original + eps
                plus = loss()
                flat[index] = original - eps
                minus = loss()
                flat[index] = original
                numeric[k] = (plus - minus) / (2 * eps)
    return GradientCheck(names, analytic.detach(), numeric, relative_error(analytic.detach(), numeric), total)
