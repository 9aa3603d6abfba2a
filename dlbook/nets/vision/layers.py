"""Pieces the vision nets share: separable convolutions, conv-BN-activation units, checks of the input size."""

import torch
from torch import nn

from dlbook.errors import DlbookError, IncompatibleDataError, check_number


class SeparableConv2d(nn.Sequential):
    """A depthwise k x k convolution (one filter per input channel, no bias) then a pointwise 1x1 convolution that
    mixes the channels: Keras' SeparableConv2D, about k*k times fewer weights than a standard convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__(nn.Conv2d(in_channels, in_channels, kernel, stride, padding, groups=in_channels, bias=False),
                         nn.Conv2d(in_channels, out_channels, 1, bias=bias))


def conv_bn(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, groups: int = 1,
            activation: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Convolution without bias (the BatchNorm after it has one), padded to keep the size at stride 1, BatchNorm,
    then the activation (none for a linear projection)."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(out_channels)]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


def bn_relu_conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """The pre-activation unit: BatchNorm, ReLU, then a convolution without bias padded to keep the size at
    stride 1."""
    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, bias=False))


def image_size(name: str, input_shape: tuple[int, int, int], minimum: int) -> tuple[int, int, int]:
    """(channels, height, width), refused unless both sides are at least `minimum` pixels."""
    if len(input_shape) != 3:
        raise IncompatibleDataError(f"{name} takes images (channels, height, width), the data gives shape "
                                    f"{tuple(input_shape)}")
    channels, height, width = input_shape
    if min(height, width) < minimum:
        raise IncompatibleDataError(f"{name} takes images of at least {minimum}x{minimum} pixels, the data gives "
                                    f"{height}x{width}")
    return channels, height, width


def choice(key: str, value, choices):
    """`value` if it is one of `choices` (a dict's keys or a sequence); else a DlbookError naming them."""
    if value not in choices:
        raise DlbookError(f"{key}={value!r} is not one of {', '.join(map(str, choices))}.")
    return choices[value] if isinstance(choices, dict) else value


STEMS = ("auto", "cifar", "imagenet")
IMAGENET_MIN_SIZE = 128  # stem=auto takes the ImageNet stem for images of at least this size, else the CIFAR one


def stem_for(name: str, stem: str, input_shape: tuple[int, int, int], cifar_minimum: int,
             imagenet_minimum: int) -> str:
    """"cifar" or "imagenet": the stem asked for, or with "auto" the one that suits the images' size; refused
    (IncompatibleDataError) where the images are smaller than that stem's net takes."""
    choice("model.net.stem", stem, STEMS)
    if stem == "auto":
        stem = "imagenet" if min(input_shape[1:]) >= IMAGENET_MIN_SIZE else "cifar"
    image_size(f"{name} with the {stem} stem", input_shape, cifar_minimum if stem == "cifar" else imagenet_minimum)
    return stem


def scaled(channels: int, multiplier: float) -> int:
    """A layer's channels times the width multiplier, at least 8."""
    return max(8, int(round(channels * multiplier)))


def check_multiplier(key: str, multiplier: float) -> None:
    """A width multiplier of 0 or below would give every layer the floor of 8 channels, silently."""
    check_number(key, multiplier, above=0, note=" (it scales every layer's channels)")


@torch.no_grad()
def flattened_size(features: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """How many numbers `features` gives for one image of input_shape: a forward pass of one blank image."""
    training = features.training
    size = features.eval()(torch.zeros(1, *input_shape)).numel()
    features.train(training)
    return size


def he_init(net: nn.Module) -> None:
    """He et al.'s (2015) normal initialisation of every convolution, for ReLU nets without BatchNorm (AlexNet,
    VGG, SqueezeNet): their activations keep their scale with depth, where PyTorch's default lets them fade and
    the first epochs barely move the loss. Biases start at zero."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
