"""Penalties on an autoencoder's code, added to its reconstruction loss; each is called with the net, the inputs and
their codes, and returns a scalar."""

import torch
from torch import nn

from dlbook.errors import DlbookError, check_number


class SparsityPenalty:
    """weight * sum_j KL(rho || rho_hat_j), rho_hat_j the batch's mean activation of code unit j (Ng's sparse
    autoencoder; Hands-On and Pro DL ch. 5, TF 1.x Cookbook ch. 8). Written out in full:
    rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)); Hands-On's code writes the second ratio
    `(1-p/1-p_hat)`, which Python reads as 1 - (p / 1) - p_hat."""

    def __init__(self, rho: float = 0.05, weight: float = 1.0):
        check_number("model.penalty.rho", rho, above=0, below=1, note=": the code units' target mean activation")
        check_number("model.penalty.weight", weight, least=0, note=" (a negative weight rewards what it penalises)")
        self.rho, self.weight = rho, weight

    def check(self, net: nn.Module) -> None:
        if not isinstance(getattr(net, "activation", None), nn.Sigmoid):
            raise DlbookError("The KL sparsity penalty compares code activations with model.penalty.rho, a "
                              "probability: it needs codes in (0, 1), model.net.activation=sigmoid.")

    def __call__(self, net: nn.Module, inputs: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        rho, rho_hat = self.rho, code.mean(dim=0).clamp(1e-6, 1 - 1e-6)
        divergence = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return self.weight * divergence.sum()


class ContractivePenalty:
    """weight * ||J||_F^2, the squared Frobenius norm of the encoder's Jacobian at each input, averaged over the batch
    (Rifai et al. 2011; Hands-On ch. 10). For one sigmoid layer h = s(Wx + b) it is exact and cheap,
    sum_j (h_j (1 - h_j))^2 sum_i W_ji^2; for any other encoder autograd computes the Jacobian."""

    def __init__(self, weight: float = 1e-4):
        check_number("model.penalty.weight", weight, least=0, note=" (a negative weight rewards what it penalises)")
        self.weight = weight

    def __call__(self, net: nn.Module, inputs: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return self.weight * self.jacobian_norms(net, inputs, code).mean()

    @staticmethod
    def jacobian_norms(net: nn.Module, inputs: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """||J||_F^2 at each input, (N,)."""
        encoder = getattr(net, "encoder", None)
        if (isinstance(encoder, nn.ModuleList) and len(encoder) == 1
                and isinstance(getattr(net, "activation", None), nn.Sigmoid)):
            return (code * (1 - code)).square() @ encoder[0].weight.square().sum(dim=1)
        shape = inputs.shape[1:]

        def encode_one(x: torch.Tensor) -> torch.Tensor:
            return net.encode(x.view(1, *shape)).flatten()

        jacobians = torch.func.vmap(torch.func.jacrev(encode_one))(inputs.flatten(1))
        return jacobians.square().sum(dim=(1, 2))
