"""Any torchvision classification model, by name, as a classifier of the data's classes: transfer learning.

The model is built with torchvision's `weights` (an enum member name such as "IMAGENET1K_V1", "DEFAULT" for the
best, or None for random weights); its head, the last nn.Linear (SqueezeNet's, which has none: the last Conv2d),
is replaced by a fresh one of the same kind with `num_classes` outputs.

Freezing works on the net's *units*: its top-level children, an nn.Sequential child opened one level (ResNet's
layer1 gives its two blocks, VGG's features its convolutions), keeping those with parameters. `freeze=k` freezes
the first k units, `freeze="all_but_head"` every parameter but the head's; `unit_names()` lists them (ResNet-18:
conv1, bn1, layer1.0 ... layer4.1, fc; VGG16: features.0 ... features.28, classifier.0, classifier.3,
classifier.6). Frozen parameters get requires_grad=False, and the frozen part of the net runs in inference mode
even while training: its BatchNorm keeps its running statistics and its dropout is off, so it is a fixed function.

Inputs: one-channel images are repeated to three. With weights, the net takes images in [0, 1]
(data.normalization=unit, which conf/family/transfer_classification.yaml sets) and standardises them with the
weights' own mean and std (torchvision's transforms meta). The weights were trained at their crop size, 224x224
for most: data.image_size=224 resizes small images (CIFAR-10's 32x32) on the device. Smaller images work for the
convolutional nets, down to the weights' min_size, at some cost in accuracy.

`load_weights=False` builds the net for `weights` (architecture, input standardisation) without reading them: for
a dlbook checkpoint that holds the trained weights anyway (scripts restoring one set it; pass
model.net.load_weights=false to fine-tune one with ckpt_restore=weights offline).
"""

import difflib
import os

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights, list_models

from dlbook.errors import DlbookError, IncompatibleDataError

ALL_BUT_HEAD = "all_but_head"
# Built without their auxiliary classifiers, which return extra logits in training mode; their ImageNet weights
# expect their own input scaling (transform_input), which torchvision turns on with them.
INCEPTIONS = ("googlenet", "inception_v3")


def classification_models() -> list[str]:
    return list_models(module=torchvision.models)


def check_model_name(name: str) -> None:
    names = classification_models()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f"Close matches: {', '.join(close)}. " if close else ""
        raise DlbookError(f"model.net.name={name!r} is not a torchvision classification model. {hint}"
                          f"All of them: {', '.join(names)}.")


def weights_of(name: str, weights: str | None):
    """The torchvision weights enum member `weights` ("DEFAULT" or a member name) of model `name`, or None."""
    if weights is None:
        return None
    members = get_model_weights(name)
    try:
        return members[weights]
    except KeyError:
        raise DlbookError(f"model.net.weights={weights!r} is not a weight set of {name}: use DEFAULT, "
                          f"{', '.join(member.name for member in members)}, or null for random weights.") from None


def weights_cache_dir() -> str:
    """Where torchvision looks for downloaded weights: <TORCH_HOME or ~/.cache/torch>/hub/checkpoints."""
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def load_model(name: str, weights, load_weights: bool) -> nn.Module:
    """torchvision's model `name` built for `weights`, holding them when load_weights."""
    options = {"aux_logits": False, "transform_input": weights is not None} if name in INCEPTIONS else {}
    try:
        return get_model(name, weights=weights if load_weights else None, **options)
    except OSError as error:  # no network (URLError), or an unwritable cache
        file = os.path.basename(weights.url)
        raise DlbookError(
            f"The {weights} weights of {name} could not be downloaded ({error}). torchvision reads them from "
            f"{weights_cache_dir()} (torch.hub.get_dir()/checkpoints; set TORCH_HOME to move it): on a machine with "
            f"internet, download {weights.url} and place it there as {file}, or train from random weights with "
            f"model.net.weights=null.") from None


def last_head_candidate(model: nn.Module) -> str:
    """The dotted name of the layer that gives the logits: the last nn.Linear, else (SqueezeNet) the last Conv2d."""
    for kind in (nn.Linear, nn.Conv2d):
        names = [name for name, module in model.named_modules() if isinstance(module, kind)]
        if names:
            return names[-1]
    raise DlbookError(f"{type(model).__name__} has no nn.Linear or nn.Conv2d layer to replace with a new head.")


def new_head(old: nn.Module, num_classes: int) -> nn.Module:
    if isinstance(old, nn.Linear):
        return nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    return nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding,
                     bias=old.bias is not None)


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The top-level children in order, an nn.Sequential child opened one level."""
    opened = []
    for name, child in model.named_children():
        if type(child) is nn.Sequential:
            opened += [(f"{name}.{inner}", module) for inner, module in child.named_children()]
        else:
            opened.append((name, child))
    return opened


def has_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


class PretrainedClassifier(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, name: str = "resnet18",
                 weights: str | None = "DEFAULT", freeze: int | str | None = None,
                 input_normalization: str | None = "unit", load_weights: bool = True):
        super().__init__()
        channels, height, width = input_shape
        check_model_name(name)
        chosen = weights_of(name, weights)
        if channels not in (1, 3):
            raise IncompatibleDataError(f"{name} takes RGB (or grey, repeated to RGB) images, the data gives "
                                        f"{channels} channels")
        min_height, min_width = (chosen or get_model_weights(name).DEFAULT).meta.get("min_size", (1, 1))
        if height < min_height or width < min_width:
            raise IncompatibleDataError(f"{name} takes images of at least {min_height}x{min_width} pixels, the "
                                        f"data gives {height}x{width}; resize them with data.image_size")
        if chosen is not None and input_normalization != "unit":
            raise DlbookError(f"model.net.weights={weights} standardises images in [0, 1] with the weights' own "
                              f"mean and std; the data's normalization is {input_normalization!r}: set "
                              f"data.normalization=unit.")
        self.name = name
        self.repeat_channels = channels == 1
        self.model = load_model(name, chosen, load_weights)
        transforms = chosen.transforms() if chosen is not None else None  # the mean and std the weights expect
        self.register_buffer("mean", torch.tensor(transforms.mean).view(1, 3, 1, 1) if transforms else None,
                             persistent=False)
        self.register_buffer("std", torch.tensor(transforms.std).view(1, 3, 1, 1) if transforms else None,
                             persistent=False)
        self.head_name = last_head_candidate(self.model)
        self.model.set_submodule(self.head_name, new_head(self.model.get_submodule(self.head_name), num_classes))
        self.frozen_blocks = self.freeze(freeze)

    def unit_names(self) -> list[str]:
        """The units `freeze=k` counts, in order (see the module docstring)."""
        return [name for name, module in blocks(self.model) if has_parameters(module)]

    def freeze(self, freeze: int | str | None) -> list[nn.Module]:
        """Freeze the first `freeze` units, or all but the head; returns the frozen blocks, which stay in eval mode."""
        named = blocks(self.model)
        head_block = next(index for index, (name, _) in enumerate(named)
                          if self.head_name == name or self.head_name.startswith(f"{name}."))
        body_units = [index for index, (_, module) in enumerate(named[:head_block]) if has_parameters(module)]
        if freeze is None or type(freeze) is int and freeze == 0:
            return []
        if freeze == ALL_BUT_HEAD:
            frozen = [module for index, (_, module) in enumerate(named) if index != head_block]
        elif type(freeze) is int and 0 < freeze <= len(body_units):  # not a bool
            frozen = [module for _, module in named[:body_units[freeze - 1] + 1]]
        else:
            raise DlbookError(f"model.net.freeze={freeze!r} must be null, {ALL_BUT_HEAD}, or a number of units from "
                              f"0 to {len(body_units)} (those before the head) of {self.name}: "
                              f"{', '.join(self.unit_names())}.")
        for module in frozen:
            module.requires_grad_(False)
        if freeze == ALL_BUT_HEAD:  # also the parameters outside every child (ViT's class token)
            self.model.requires_grad_(False)
            self.head.requires_grad_(True)
        return frozen

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.frozen_blocks:
            module.eval()
        return self

    @property
    def head(self) -> nn.Module:
        return self.model.get_submodule(self.head_name)

    def forward(self, x):
        if self.repeat_channels:
            x = x.expand(-1, 3, -1, -1)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return self.model(x)
