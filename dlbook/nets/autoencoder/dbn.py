"""Deep belief net (Hinton, Osindero & Teh 2006; Pro DL ch. 5, TF 1.x Cookbook ch. 7): Bernoulli RBMs stacked under
a softmax layer. Each RBM is pretrained in turn by CD-k on the hidden probabilities of the ones below it
(`pretrain_step`); then the whole net trains as a classifier, each RBM's weight and hidden bias a sigmoid layer."""

import math

import torch
from torch import nn

from dlbook.errors import check_count, check_number, check_sizes
from dlbook.nets.autoencoder.rbm import BernoulliRBM, binarized, check_threshold


class DeepBeliefNet(nn.Module):
    pretrains_by_its_own_rule = True  # its pretrain_step updates an RBM itself; there is no loss to synchronise

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden_sizes: tuple[int, ...] = (100,),
                 binarize: float | None = 0.5, cd_k: int = 1, cd_lr: float = 0.01, init_std: float = 0.01):
        super().__init__()
        check_sizes("model.net.hidden_sizes", hidden_sizes)
        check_threshold("model.net.binarize", binarize)
        check_count("model.net.cd_k", cd_k, note=" (Gibbs steps of each contrastive divergence update)")
        check_number("model.net.cd_lr", cd_lr, least=0)
        widths = [math.prod(input_shape), *hidden_sizes]
        self.rbms = nn.ModuleList(BernoulliRBM(wide, narrow, init_std) for wide, narrow in zip(widths, widths[1:]))
        self.head = nn.Linear(widths[-1], num_classes)
        self.binarize, self.cd_k, self.cd_lr = binarize, cd_k, cd_lr

    @property
    def pretrain_layers(self) -> int:
        return len(self.rbms)

    def visible(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] as visible units, binarised at `binarize`."""
        return binarized(x.flatten(1), self.binarize)

    def features(self, x: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        """The hidden probabilities of the first `layers` RBMs (all by default), each fed the previous one's."""
        h = self.visible(x)
        for rbm in self.rbms[:layers]:
            h = rbm.hidden_probs(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def pretrain_step(self, x: torch.Tensor, layer: int) -> tuple[None, torch.Tensor]:
        """One CD-k update of RBM `layer` on the batch: nothing for an optimizer to minimise, and the RBM's
        reconstruction error (mean squared, per unit) on its inputs."""
        v = self.features(x, layer)
        self.rbms[layer].cd_update(v, self.cd_lr, self.cd_k)
        return None, (self.rbms[layer].reconstruct(v) - v).square().mean()
