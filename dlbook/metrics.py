"""Sample-quality measures for generative models."""

import torch
from torch import nn


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> torch.Tensor:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors (N x D each):
    |mu_a - mu_b|^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)). With Inception features this is the FID."""
    a, b = features_a.double(), features_b.double()
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # Tr((C_a C_b)^(1/2)) is the sum of the square roots of the eigenvalues of C_a C_b, which are real and >= 0
    # in exact arithmetic; rounding can leave tiny negative or imaginary parts.
    eigenvalues = torch.linalg.eigvals(cov_a @ cov_b)
    trace_sqrt = eigenvalues.real.clamp_min(0).sqrt().sum()
    return (mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt


@torch.no_grad()
def penultimate_features(net: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """What a classifier feeds its last linear layer: the features it has learned to separate classes by."""
    last_linear = [module for module in net.modules() if isinstance(module, nn.Linear)][-1]
    captured = []
    hook = last_linear.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].flatten(1)))
    was_training = net.training
    net.eval()
    try:
        for batch in images.split(batch_size):
            net(batch)
    finally:
        hook.remove()
        net.train(was_training)
    return torch.cat(captured)
