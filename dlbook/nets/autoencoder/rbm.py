"""Bernoulli restricted Boltzmann machine (Pro DL ch. 5; TF 1.x Cookbook ch. 7): binary visible and hidden units,
energy E(v, h) = -v.b - h.c - h W v, trained by contrastive divergence (Hinton 2002) or, with chains kept between
updates, persistent CD (Tieleman 2008). The parameters are updated by the CD rule itself, not by an optimizer."""

import torch
import torch.nn.functional as F
from torch import nn

from dlbook.errors import check_count, check_number


def binarized(v: torch.Tensor, threshold: float | None) -> torch.Tensor:
    """Values in [0, 1] as visible units: those above `threshold` on, the others off (Pro DL's binarised MNIST), or,
    with no threshold, the values themselves as probabilities."""
    return (v > threshold).to(v.dtype) if threshold is not None else v


def check_threshold(key: str, threshold: float | None) -> None:
    """Refuse a binarising threshold no pixel in [0, 1] can pass, or all pass but 0s: training would see blank
    images, silently."""
    if threshold is not None:
        check_number(key, threshold, least=0, below=1,
                     note=": a pixel threshold (null feeds the intensities as probabilities)")


class BernoulliRBM(nn.Module):
    def __init__(self, num_visible: int, num_hidden: int, init_std: float = 0.01):
        super().__init__()
        check_count("model.net.num_hidden", num_hidden)
        self.weight = nn.Parameter(torch.randn(num_hidden, num_visible) * init_std)
        self.visible_bias = nn.Parameter(torch.zeros(num_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(num_hidden))

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h_j = 1 | v) for each hidden unit."""
        return torch.sigmoid(F.linear(v, self.weight, self.hidden_bias))

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """p(v_i = 1 | h) for each visible unit."""
        return torch.sigmoid(F.linear(h, self.weight.t(), self.visible_bias))

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -v.b - sum_j softplus(c_j + W_j v), so that p(v) is proportional to exp(-F(v)); one per row."""
        return -v @ self.visible_bias - F.softplus(F.linear(v, self.weight, self.hidden_bias)).sum(dim=1)

    def reconstruct(self, v: torch.Tensor) -> torch.Tensor:
        """One mean-field pass down and up: p(v | h) at h = p(h | v)."""
        return self.visible_probs(self.hidden_probs(v))

    def gibbs(self, v: torch.Tensor, steps: int) -> torch.Tensor:
        """`steps` steps of block Gibbs sampling from visible states v: h ~ p(h | v), then v ~ p(v | h)."""
        for _ in range(steps):
            v = torch.bernoulli(self.visible_probs(torch.bernoulli(self.hidden_probs(v))))
        return v

    @torch.no_grad()
    def contrastive_divergence(self, v: torch.Tensor, k: int = 1, chains: torch.Tensor | None = None
                               ) -> tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        """The CD-k estimate of the log-likelihood's gradient in (weight, visible_bias, hidden_bias), and the
        negative chains' visible states: the data term E[h v^T] under p(h | v) at the batch, less the model term at
        the states k Gibbs steps from the batch, or from `chains` (persistent CD), whose number may differ."""
        data_hidden = self.hidden_probs(v)
        negative = self.gibbs(v if chains is None else chains, k)
        model_hidden = self.hidden_probs(negative)
        weight = data_hidden.t() @ v / len(v) - model_hidden.t() @ negative / len(negative)
        return (weight, v.mean(0) - negative.mean(0), data_hidden.mean(0) - model_hidden.mean(0)), negative

    @torch.no_grad()
    def cd_update(self, v: torch.Tensor, lr: float, k: int = 1, chains: torch.Tensor | None = None) -> torch.Tensor:
        """One CD-k ascent step of size lr on the batch v; returns the negative chains' states (for PCD)."""
        gradients, negative = self.contrastive_divergence(v, k, chains)
        for parameter, gradient in zip((self.weight, self.visible_bias, self.hidden_bias), gradients):
            parameter.add_(gradient, alpha=lr)
        return negative
