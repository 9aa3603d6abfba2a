"""CapsNet's parts against hand-computed values, and a tiny one learning the digits."""

import math

import pytest
import torch
from sklearn.datasets import load_digits

from dlbook.errors import IncompatibleDataError
from dlbook.nets.vision.capsnet import CapsNet, route, squash
from dlbook.tasks.capsule import margin_loss


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_squash_keeps_direction_and_sets_length_to_norm2_over_one_plus_norm2():
    squashed = squash(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    # |s|^2 = 25: length 25/26 along (3, 4) / 5
    torch.testing.assert_close(squashed, torch.tensor([[15 / 26, 20 / 26], [0.0, 0.0]]))


def test_routing_moves_couplings_toward_agreement_per_image():
    # Two input capsules, two output capsules of 2-D, two images. In the first, both inputs predict (2, 0) for
    # output 0 and opposite vectors for output 1; the second mirrors it onto output 1.
    first = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, -1.0]]])
    second = torch.tensor([[[2.0, 0.0], [0.0, 2.0]], [[-2.0, 0.0], [0.0, 2.0]]])
    predictions = torch.stack([first, second])  # (N, inputs, outputs, dim)
    # One iteration: couplings 1/2, s_0 = (2, 0) of length^2 4 -> v_0 = (4/5) (1, 0); s_1 = 0.
    torch.testing.assert_close(route(predictions, 1), torch.tensor([[[0.8, 0.0], [0.0, 0.0]],
                                                                    [[0.0, 0.0], [0.0, 0.8]]]))
    # Two: each input's logit for output 0 grows by (2, 0) . (0.8, 0) = 1.6, for output 1 by 0, so c_i0 =
    # sigmoid(1.6) and s_0 = 2 c_i0 (2, 0), squashed to length |s|^2 / (1 + |s|^2); s_1 still cancels.
    norm = 4 * sigmoid(1.6)
    length = norm ** 2 / (1 + norm ** 2)
    torch.testing.assert_close(route(predictions, 2), torch.tensor([[[length, 0.0], [0.0, 0.0]],
                                                                    [[0.0, 0.0], [0.0, length]]]))


def test_margin_loss_by_hand():
    lengths = torch.tensor([[0.95, 0.3, 0.05], [0.5, 0.2, 0.1]])
    # first: the true class is long enough, 0.5 x (0.3 - 0.1)^2 for class 1; second: (0.9 - 0.2)^2 for the true
    # class 1 and 0.5 x (0.5 - 0.1)^2 for class 0. Averaged over the two.
    expected = (0.5 * 0.2 ** 2 + 0.7 ** 2 + 0.5 * 0.4 ** 2) / 2
    torch.testing.assert_close(margin_loss(lengths, torch.tensor([0, 1])), torch.tensor(expected))


def tiny_capsnet(**options) -> CapsNet:
    return CapsNet((1, 8, 8), 10, conv_channels=16, kernel=3, primary_maps=4, primary_dim=4, capsule_dim=8,
                   decoder_sizes=(32,), **options)


def test_tiny_capsnet_learns_the_digits():
    torch.manual_seed(0)
    digits = load_digits()
    images = torch.tensor(digits.images[:256], dtype=torch.float32).unsqueeze(1) / 16
    labels = torch.tensor(digits.target[:256])
    net = tiny_capsnet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for step in range(60):  # 15 passes over 4 batches of 64
        batch = slice(step % 4 * 64, (step % 4 + 1) * 64)
        capsules = net(images[batch])
        squared_error = (net.reconstruct(capsules, labels[batch]) - images[batch]).square().sum((1, 2, 3)).mean()
        loss = margin_loss(capsules.norm(dim=-1), labels[batch]) + 5e-4 * squared_error
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-4:]) < 0.5 * sum(losses[:4])  # the last pass's against the first's
    capsules = net(images)
    assert capsules.shape == (256, 10, 8) and capsules.norm(dim=-1).max() < 1
    assert (capsules.norm(dim=-1).argmax(1) == labels).float().mean() > 0.5  # chance is 0.1
    # the decoder reads which class's capsule it is given
    assert not torch.allclose(net.reconstruct(capsules, labels), net.reconstruct(capsules, (labels + 1) % 10))


def test_too_small_images_are_refused():
    with pytest.raises(IncompatibleDataError, match="at least 17x17 pixels, the data gives 8x8"):
        CapsNet((1, 8, 8), 10)
