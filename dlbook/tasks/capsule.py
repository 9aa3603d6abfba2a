"""Capsule-net classification (CapsNet): the class scores are the lengths of the class capsules, trained with the
margin loss plus a small reconstruction loss (Sabour et al. 2017; TensorFlow 1.x Deep Learning Cookbook ch. 11)."""

from collections.abc import Callable

import torch
from torch import nn

from dlbook.data.spec import DataSpec, ImageSpec
from dlbook.errors import check_number
from dlbook.plots import image_grid
from dlbook.tasks.classification import ClassificationTask

RECONSTRUCTIONS_DRAWN = 8


def margin_loss(lengths: torch.Tensor, labels: torch.Tensor, present_margin: float = 0.9,
                absent_margin: float = 0.1, absent_weight: float = 0.5) -> torch.Tensor:
    """Eq. 4, summed over the classes and averaged over the batch: the true class's capsule is pushed longer than
    present_margin, every other one shorter than absent_margin, those terms down-weighted by absent_weight."""
    present = nn.functional.one_hot(labels, lengths.shape[1]).to(lengths.dtype)
    too_short = (present_margin - lengths).clamp(min=0).square()
    too_long = (lengths - absent_margin).clamp(min=0).square()
    return (present * too_short + absent_weight * (1 - present) * too_long).sum(dim=1).mean()


class CapsuleTask(ClassificationTask):
    """A classifier whose net gives class capsules and reconstructs images from them (dlbook.nets.vision.capsnet):
    loss = margin loss + reconstruction_weight x the sum of squared pixel errors per image, the image redrawn from
    the true class's capsule in training and from the predicted one otherwise. Images in [0, 1]
    (data.normalization=unit), which the decoder's sigmoid redraws. Logs `<stage>/margin_loss` and
    `<stage>/reconstruction_sse`; figures/reconstructions_<split>.png shows the first validation (or test) images
    over their reconstructions."""

    accepts = (ImageSpec,)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, present_margin: float = 0.9, absent_margin: float = 0.1,
                 absent_weight: float = 0.5, reconstruction_weight: float = 0.0005, report_examples: int = 16):
        super().__init__(net, data_spec, optimizer, scheduler, report_examples=report_examples)
        check_number("model.present_margin", present_margin, 0, 1)
        check_number("model.absent_margin", absent_margin, 0, 1)
        check_number("model.absent_weight", absent_weight, least=0)
        check_number("model.reconstruction_weight", reconstruction_weight, least=0)
        self.margins = dict(present_margin=present_margin, absent_margin=absent_margin, absent_weight=absent_weight)
        self.reconstruction_weight = reconstruction_weight
        self.reconstructions: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # split -> (inputs, outputs)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The class capsules' lengths (N, classes), in [0, 1)."""
        return self.net(inputs).norm(dim=-1)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """The class capsules side by side (N, classes x capsule_dim): what scripts/embed.py shows."""
        return self.net(inputs).flatten(1)

    def logits_and_loss(self, inputs: torch.Tensor, labels: torch.Tensor, stage: str) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
        capsules = self.net(inputs)
        lengths = capsules.norm(dim=-1)
        margin = margin_loss(lengths, labels, **self.margins)
        shown = labels if stage == "train" else lengths.argmax(dim=1)
        reconstructed = self.net.reconstruct(capsules, shown)
        squared_error = (reconstructed - inputs).square().flatten(1).sum(dim=1).mean()
        self.log_epoch_mean(f"{stage}/margin_loss", margin, len(labels))
        self.log_epoch_mean(f"{stage}/reconstruction_sse", squared_error, len(labels))
        if stage != "train" and stage not in self.reconstructions:
            self.reconstructions[stage] = (inputs[:RECONSTRUCTIONS_DRAWN].detach().cpu(),
                                           reconstructed[:RECONSTRUCTIONS_DRAWN].detach().cpu())
        return lengths, margin + self.reconstruction_weight * squared_error

    def on_validation_epoch_start(self) -> None:
        self.reconstructions.pop("val", None)

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self.reconstructions.pop("test", None)

    def figures(self, stage: str) -> dict:
        figures = super().figures(stage)
        split = "val" if stage == "fit" else "test"
        if split in self.reconstructions:
            inputs, outputs = self.reconstructions[split]
            figures[f"reconstructions_{split}"] = image_grid(
                [*inputs.clamp(0, 1), *outputs], ["input"] * len(inputs) + ["reconstruction"] * len(outputs),
                columns=len(inputs))
        return figures
