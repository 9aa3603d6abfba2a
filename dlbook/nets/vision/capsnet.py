"""CapsNet (Sabour, Frosst and Hinton, "Dynamic Routing Between Capsules", 2017), as TensorFlow 1.x Deep Learning
Cookbook ch. 11 builds it: conv 256@9x9 -> PrimaryCaps (32 maps of 8-D capsules, 9x9 stride 2) -> DigitCaps (one
16-D capsule a class, by dynamic routing), and a decoder that redraws the image from the capsule of one class."""

import math

import torch
from torch import nn

from dlbook.errors import check_count
from dlbook.nets.vision.layers import image_size

EPSILON = 1e-9  # keeps squash's gradient finite at the zero vector


def squash(vectors: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Eq. 1: each vector keeps its direction and gets length |s|^2 / (1 + |s|^2), below 1."""
    squared = vectors.square().sum(dim, keepdim=True)
    return vectors * (squared / (1 + squared) / torch.sqrt(squared + EPSILON))


def route(predictions: torch.Tensor, iterations: int) -> torch.Tensor:
    """Dynamic routing (Procedure 1): from the predictions u_hat[j|i] (N, inputs, outputs, dim) that each input
    capsule i makes for each output capsule j, the output capsules v_j (N, outputs, dim). Each input's coupling to
    the outputs is a softmax of logits that grow by its agreement u_hat[j|i] . v_j with each output.

    Per image, as the paper has it: the book's code sums the agreements over the batch, so one image's routing
    depends on the others in its batch."""
    logits = predictions.new_zeros(predictions.shape[:3])
    for iteration in range(iterations):
        couplings = logits.softmax(dim=2)
        outputs = squash(torch.einsum("nio,niod->nod", couplings, predictions))
        if iteration + 1 < iterations:
            logits = logits + torch.einsum("niod,nod->nio", predictions, outputs)
    return outputs


class CapsNet(nn.Module):
    """`forward` gives the class capsules (N, num_classes, capsule_dim), whose lengths are the class scores;
    `reconstruct` redraws images in [0, 1] from the capsule of the given classes, the others masked to zero."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, conv_channels: int = 256,
                 kernel: int = 9, primary_maps: int = 32, primary_dim: int = 8, primary_stride: int = 2,
                 capsule_dim: int = 16, routing_iterations: int = 3, decoder_sizes: tuple[int, ...] = (512, 1024),
                 weight_std: float = 0.01):
        super().__init__()
        check_count("model.net.routing_iterations", routing_iterations)
        channels, height, width = image_size("CapsNet", input_shape, 2 * kernel - 1)
        self.input_shape = tuple(input_shape)
        self.primary_maps, self.primary_dim = primary_maps, primary_dim
        self.routing_iterations = routing_iterations
        self.conv = nn.Sequential(nn.Conv2d(channels, conv_channels, kernel), nn.ReLU())
        self.primary = nn.Conv2d(conv_channels, primary_maps * primary_dim, kernel, stride=primary_stride)
        grid = [(side - kernel + 1 - kernel) // primary_stride + 1 for side in (height, width)]
        primary_capsules = primary_maps * grid[0] * grid[1]  # 32 x 6 x 6 = 1,152 on MNIST
        # W_ij: one 8 -> 16 map for each primary capsule i and class capsule j (the book's stddev 0.01)
        self.weights = nn.Parameter(torch.randn(primary_capsules, num_classes, capsule_dim, primary_dim) * weight_std)
        decoder: list[nn.Module] = []
        features = num_classes * capsule_dim
        for size in decoder_sizes:
            decoder += [nn.Linear(features, size), nn.ReLU()]
            features = size
        decoder += [nn.Linear(features, math.prod(input_shape)), nn.Sigmoid()]
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.primary(self.conv(x))  # (N, maps * dim, H', W')
        n, _, h, w = maps.shape
        # Each map's capsule at each position: a vector of `primary_dim` channels.
        primary = maps.view(n, self.primary_maps, self.primary_dim, h, w).permute(0, 1, 3, 4, 2)
        primary = squash(primary.reshape(n, -1, self.primary_dim))
        predictions = torch.einsum("nip,iodp->niod", primary, self.weights)  # u_hat[j|i] = W_ij u_i
        return route(predictions, self.routing_iterations)

    def reconstruct(self, capsules: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) from the capsule of `classes`. As in the paper, the decoder sees all class
        capsules with the others zeroed, so it knows the class; the book's code passes the one 16-D vector."""
        mask = nn.functional.one_hot(classes, capsules.shape[1]).to(capsules.dtype)
        return self.decoder((capsules * mask[..., None]).flatten(1)).view(-1, *self.input_shape)
