"""What a trained image classifier looks at, for any net that maps images (N, C, H, W) to logits (N, classes), or to
one logit (N, 1) for two classes: the feature maps of a layer, the first convolution's filters, vanilla saliency,
Grad-CAM, guided backpropagation, Guided Grad-CAM and class-activation maximisation; and the maps drawn over the
images as RGB tensors in [0, 1], written as PNGs and logged to W&B. scripts/explain.py and the explanations
callback use them.

Every method runs the net in eval mode and puts each module's mode back afterwards; gradients are taken with
torch.autograd.grad, so the net's parameters get no .grad. Targets are class indices, one per image, or None for
each image's predicted class.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2.functional import gaussian_blur
from torchvision.utils import make_grid, save_image

from dlbook.errors import DlbookError

METHODS = ("gradcam", "saliency", "guided_backprop", "guided_gradcam", "feature_maps", "filters", "activation_max")
IMAGE_METHODS = METHODS[:5]  # those that explain given images


def conv_layer_names(net: nn.Module) -> list[str]:
    return [name for name, module in net.named_modules() if isinstance(module, nn.Conv2d)]


def named_layer(net: nn.Module, name: str) -> nn.Module:
    modules = dict(net.named_modules())
    if name not in modules or not name:
        raise DlbookError(f"layer={name!r} is not a layer of the net. Its convolutions: "
                          f"{', '.join(conv_layer_names(net)) or 'none'} (any module's dotted name works).")
    return modules[name]


def default_layer(net: nn.Module) -> str:
    """Grad-CAM's and the feature maps' layer when none is named: the last Conv2d, the last with spatial output."""
    names = conv_layer_names(net)
    if not names:
        raise DlbookError(f"{type(net).__name__} has no Conv2d layer: Grad-CAM and feature maps need a layer with "
                          f"spatial output; name one with layer=<dotted name>.")
    return names[-1]


@contextmanager
def evaluating(net: nn.Module) -> Iterator[nn.Module]:
    """The net in eval mode; each module's own mode is put back afterwards."""
    modes = [(module, module.training) for module in net.modules()]
    net.eval()
    try:
        yield net
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def captured_output(layer: nn.Module) -> Iterator[dict]:
    """{"output": the layer's output} of the forward passes run inside; the hook is removed afterwards."""
    captured = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.update(output=output))
    try:
        yield captured
    finally:
        handle.remove()


def class_scores(logits: torch.Tensor, targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(each image's score for its target class, the targets); the predicted classes when targets is None. One
    logit (N, 1) scores class 1 by the logit and class 0 by its negative."""
    if logits.shape[1] == 1:
        targets = (logits[:, 0] > 0).long() if targets is None else targets
        return logits[:, 0] * (2 * targets - 1), targets
    targets = logits.argmax(dim=1) if targets is None else targets
    return logits.gather(1, targets[:, None])[:, 0], targets


def input_gradients(net: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """d(target score)/d(image), (N, C, H, W)."""
    images = images.detach().clone().requires_grad_(True)
    with evaluating(net):
        scores, _ = class_scores(net(images), targets)
        (gradients,) = torch.autograd.grad(scores.sum(), images)
    return gradients


def feature_maps(net: nn.Module, images: torch.Tensor, layer: str) -> torch.Tensor:
    """The output of `layer` for the images, (N, C, h, w)."""
    with torch.no_grad(), evaluating(net), captured_output(named_layer(net, layer)) as captured:
        net(images)
    return captured["output"]


def first_layer_filters(net: nn.Module) -> torch.Tensor:
    """The weights of the first Conv2d, (filters, input channels, k, k)."""
    names = conv_layer_names(net)
    if not names:
        raise DlbookError(f"{type(net).__name__} has no Conv2d layer whose filters to draw.")
    return net.get_submodule(names[0]).weight.detach()


def saliency(net: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Vanilla saliency (Simonyan et al. 2014): the largest |gradient| over the channels of each pixel, (N, H, W)."""
    return input_gradients(net, images, targets).abs().amax(dim=1)


def grad_cam(net: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None,
             layer: str | None = None) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): ReLU of the layer's channels weighted by their mean gradient, resized to
    the images and scaled to a maximum of 1 per image, (N, H, W)."""
    images = images.detach().clone().requires_grad_(True)  # a graph even when every parameter is frozen
    with evaluating(net), captured_output(named_layer(net, layer or default_layer(net))) as captured:
        scores, _ = class_scores(net(images), targets)
        activations = captured["output"]
        (gradients,) = torch.autograd.grad(scores.sum(), activations)
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations.detach()).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return cam / cam.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)


class GuidedReLUFunction(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients, and only where the input was positive."""

    @staticmethod
    def forward(ctx, inputs):
        outputs = inputs.clamp(min=0)
        ctx.save_for_backward(outputs)
        return outputs

    @staticmethod
    def backward(ctx, gradients):
        (outputs,) = ctx.saved_tensors
        return gradients.clamp(min=0) * (outputs > 0)


class GuidedReLU(nn.Module):
    def forward(self, x):
        return GuidedReLUFunction.apply(x)


@contextmanager
def guided_relus(net: nn.Module) -> Iterator[nn.Module]:
    """The net with each nn.ReLU module swapped for a GuidedReLU; the original modules are put back afterwards.
    ReLUs called as functions inside a forward are not reached: the net must hold them as modules."""
    relus = [(name, module) for name, module in net.named_modules(remove_duplicate=False)
             if isinstance(module, nn.ReLU)]
    if not relus:
        raise DlbookError(f"{type(net).__name__} has no nn.ReLU module for guided backpropagation to guide "
                          f"(its activations are other functions, or called inside forward).")
    try:
        for name, _ in relus:
            net.set_submodule(name, GuidedReLU())
        yield net
    finally:
        for name, module in relus:
            net.set_submodule(name, module)


def guided_backprop(net: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015): the input gradient through guided ReLUs, (N, C, H, W)."""
    with guided_relus(net):
        return input_gradients(net, images, targets)


def guided_grad_cam(net: nn.Module, images: torch.Tensor, targets: torch.Tensor | None = None,
                    layer: str | None = None) -> torch.Tensor:
    """Guided Grad-CAM: guided backpropagation times the Grad-CAM map, (N, C, H, W)."""
    return guided_backprop(net, images, targets) * grad_cam(net, images, targets, layer)[:, None]


def activation_maximization(net: nn.Module, target: int, input_shape: tuple[int, int, int], steps: int = 200,
                            lr: float = 0.05, l2: float = 1e-3, blur_every: int = 4, blur_sigma: float = 0.5,
                            seed: int = 0) -> tuple[torch.Tensor, float, float]:
    """An input that maximises the target class's score (Erhan et al. 2009; Simonyan et al. 2014): gradient ascent
    with Adam from small seeded noise on score - l2 * ||x||^2, blurred every `blur_every` steps (none with 0) to
    keep it smooth. Returns (the image (C, H, W), the score at the start, the score at the end)."""
    device = next(net.parameters()).device
    noise = 0.01 * torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(seed))
    image = noise.to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    target_tensor = torch.tensor([target], device=device)
    with evaluating(net):
        first = class_scores(net(image), target_tensor)[0].item()
        for step in range(steps):
            score = class_scores(net(image), target_tensor)[0][0]
            (image.grad,) = torch.autograd.grad(-score + l2 * image.square().sum(), image)
            optimizer.step()
            if blur_every and (step + 1) % blur_every == 0:
                with torch.no_grad():
                    image.copy_(gaussian_blur(image, kernel_size=3, sigma=blur_sigma))
        last = class_scores(net(image), target_tensor)[0].item()
    return image.detach()[0], first, last


# -- drawing ---------------------------------------------------------------------------------------------------
def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Each image (or map) of the batch scaled to [0, 1] by its own minimum and maximum."""
    flat = images.flatten(1)
    low, high = flat.amin(dim=1), flat.amax(dim=1)
    shape = (-1,) + (1,) * (images.dim() - 1)
    return (images - low.view(shape)) / (high - low).clamp_min(1e-12).view(shape)


def rgb(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3]


def heat_colors(maps: torch.Tensor) -> torch.Tensor:
    """Maps (N, H, W) in [0, 1] as RGB (N, 3, H, W): blue through green and yellow to red (a 'jet' ramp)."""
    ramps = [1.5 - (4 * maps - shift).abs() for shift in (3.0, 2.0, 1.0)]  # red, green, blue
    return torch.stack(ramps, dim=1).clamp(0, 1)


def overlay(images: torch.Tensor, maps: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Heat maps (N, H, W) in [0, 1] over the images (as the net takes them, shown min-max scaled)."""
    return (1 - alpha) * rgb(to_unit(images.float())) + alpha * heat_colors(maps.float())


def gradient_images(gradients: torch.Tensor) -> torch.Tensor:
    """Signed input gradients (N, C, H, W) as images: zero at grey, each image scaled by its largest |value|."""
    scale = gradients.flatten(1).abs().amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return rgb(0.5 + 0.5 * gradients / scale)


def channel_grid(maps: torch.Tensor) -> torch.Tensor:
    """Channels (C, h, w) of one image's feature maps, or filters (F, C, k, k), as one grid image, each scaled on
    its own."""
    tiles = maps[:, None] if maps.dim() == 3 else rgb(maps) if maps.shape[1] == 3 else maps[:, :1]
    return make_grid(to_unit(tiles.float()), nrow=math.ceil(tiles.shape[0] ** 0.5), padding=1, pad_value=1.0)


def explanation_images(net: nn.Module, images: torch.Tensor, method: str, targets: torch.Tensor | None = None,
                       layer: str | None = None) -> list[torch.Tensor]:
    """One RGB image (3, H, W) in [0, 1] per input image by an image method: gradcam and saliency over the image,
    guided_backprop and guided_gradcam as signed gradients, feature_maps as a grid of the layer's channels."""
    if method == "gradcam":
        return list(overlay(images, grad_cam(net, images, targets, layer)))
    if method == "saliency":
        return list(overlay(images, to_unit(saliency(net, images, targets))))
    if method == "guided_backprop":
        return list(gradient_images(guided_backprop(net, images, targets)))
    if method == "guided_gradcam":
        return list(gradient_images(guided_grad_cam(net, images, targets, layer)))
    if method == "feature_maps":
        return [channel_grid(maps) for maps in feature_maps(net, images, layer or default_layer(net))]
    raise DlbookError(f"method={method} is not one of {', '.join(IMAGE_METHODS)}.")


def write_images(images: dict[str, torch.Tensor], folder: Path, loggers=(), key: str = "explain",
                 step: int = 0) -> list[Path]:
    """Each image (3, H, W) in [0, 1] as <folder>/<name>.png, and logged under key/<name> to any W&B logger."""
    from lightning.pytorch.loggers import WandbLogger
    from torchvision.transforms.functional import to_pil_image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in images.items():
        paths.append(folder / f"{name}.png")
        save_image(image.float().cpu(), paths[-1])
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            for name, image in images.items():
                logger.log_image(f"{key}/{name}", [to_pil_image(image.float().cpu().clamp(0, 1))], step=step)
    return paths
