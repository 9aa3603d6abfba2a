"""Sample-quality measures for generative models."""

import math

import torch
from torch import nn

from dlbook.utils.modes import eval_mode


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> torch.Tensor:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors (N x D each):
    |mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)). With Inception features this is the FID."""
    a, b = features_a.double(), features_b.double()
    factor_a, factor_b = covariance_factor(a), covariance_factor(b)
    # With C = R^T R, the square roots of the eigenvalues of C_a C_b are the singular values of R_a R_b^T, at most
    # N x N. The D x D non-symmetric eigenproblem takes ~10 s for Inception's 2048 features, and with fewer samples
    # than features its rounding noise in the ~0 eigenvalues adds up under the square roots.
    trace_sqrt = torch.linalg.svdvals(factor_a @ factor_b.T).sum()
    traces = factor_a.square().sum() + factor_b.square().sum()
    return (a.mean(0) - b.mean(0)).square().sum() + traces - 2 * trace_sqrt


def covariance_factor(features: torch.Tensor) -> torch.Tensor:
    """R (min(N, D) x D) with R^T R the covariance of the N x D features: R of the centred features' QR."""
    centred = (features - features.mean(0)) / math.sqrt(len(features) - 1)
    return torch.linalg.qr(centred, mode="r").R


@torch.no_grad()
def penultimate_features(net: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """What a classifier feeds its last linear layer: the features it has learned to separate classes by."""
    last_linear = [module for module in net.modules() if isinstance(module, nn.Linear)][-1]
    captured = []
    hook = last_linear.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].flatten(1)))
    try:
        with eval_mode(net):
            for batch in images.split(batch_size):
                net(batch)
    finally:
        hook.remove()
    return torch.cat(captured)
