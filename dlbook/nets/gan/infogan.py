"""InfoGAN's Q network (Chen et al. 2016): the parameters of Q(c | x) from the discriminator's features.

It shares the discriminator's layers up to `features` and adds one hidden layer (BatchNorm, LeakyReLU(0.2)),
as in the paper's MNIST net and Hands-On Deep Learning Algorithms, ch. 9. GANTask reads its outputs as the
categorical code's logits followed by the continuous codes' means.
"""

from torch import nn


class QHead(nn.Module):
    def __init__(self, in_features: int, out_features: int, hidden_size: int = 128):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden_size), nn.BatchNorm1d(hidden_size),
                                    nn.LeakyReLU(0.2), nn.Linear(hidden_size, out_features))

    def forward(self, features):
        return self.layers(features)
