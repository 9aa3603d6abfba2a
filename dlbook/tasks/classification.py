"""Classification of labelled images, of table rows with class targets, or of token sequences (reviews): cross-entropy
on logits, or, with `binary`, one logit and binary cross-entropy (logistic regression, the books' nets with one
sigmoid output)."""

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MaxMetric

from dlbook.data.spec import DataSpec, ImageSpec, TabularSpec, TokenSpec
from dlbook.data.vectors import use_pretrained_vectors
from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.plots import decision_regions, new_figure, scatter
from dlbook.tasks.base import LossTask


class ClassificationTask(LossTask):
    """`binary`: one logit for two-class data, trained with BCE on the logit and read as class 1 where it is
    positive. `row_probabilities` (with binary, on tables): the probability of class 1 of the first that many
    test rows, logged as `test/p_row<i>`, as the books print them for truth tables. On tables of two features, the
    figures are the decision regions with the training and the test rows."""

    accepts = (ImageSpec, TabularSpec)
    summary_metrics = (("test/acc", "Test accuracy"),)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, label_smoothing: float = 0.0, binary: bool = False,
                 row_probabilities: int = 0):
        super().__init__(data_spec, optimizer, scheduler)
        if isinstance(data_spec, TabularSpec) and data_spec.is_regression:
            plural = "s" if data_spec.num_targets > 1 else ""
            raise IncompatibleDataError(f"it predicts classes; the data has {data_spec.num_targets} numeric "
                                        f"target{plural} to regress and no classes")
        if binary and data_spec.num_classes != 2:
            raise IncompatibleDataError(f"its one logit separates two classes; the data has "
                                        f"{data_spec.num_classes}")
        if binary and label_smoothing:
            raise DlbookError(f"model.label_smoothing={label_smoothing} smooths softmax targets; a model with one "
                              f"logit (model.binary=true) takes none: set model.label_smoothing=0.")
        if row_probabilities and not binary:
            raise DlbookError(f"model.row_probabilities={row_probabilities} logs the class-1 probability of test "
                              f"rows, which a model with one logit gives: set model.binary=true or "
                              f"model.row_probabilities=0.")
        if row_probabilities and not isinstance(data_spec, TabularSpec):
            raise IncompatibleDataError(f"it logs the class-1 probability of table rows "
                                        f"(model.row_probabilities={row_probabilities})")
        self.binary = binary
        self.row_probabilities = row_probabilities
        self.net = self.build_net(net, data_spec, 1 if binary else data_spec.num_classes)
        self.criterion = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.val_acc_best = self.best_of_run(MaxMetric)

    @staticmethod
    def build_net(net: Callable[..., nn.Module], data_spec: DataSpec, num_outputs: int) -> nn.Module:
        """The net sized by the data: input_shape for images and table rows."""
        try:
            return net(input_shape=data_spec.input_shape, num_classes=num_outputs)
        except (ValueError, TypeError) as error:
            if not isinstance(data_spec, TabularSpec):
                raise
            # A convolutional net cannot unpack a row's (features,) shape into channels, height and width.
            name = getattr(getattr(net, "func", net), "__name__", "the net")
            raise IncompatibleDataError(f"{name} takes images (channels, height, width); the data gives rows of "
                                        f"{data_spec.num_features} features ({error})") from None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits: (N, classes), or (N, 1) with binary."""
        return self.net(inputs)

    def classes(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits[:, 0] > 0).long() if self.binary else logits.argmax(dim=1)

    def loss_step(self, batch, stage: str) -> torch.Tensor:
        inputs, labels = batch
        logits = self(inputs)
        loss = self.criterion(logits[:, 0], labels.float()) if self.binary else self.criterion(logits, labels)
        # Summed on the device and logged once per epoch: a few kernels a step where torchmetrics' accuracy and
        # mean launch dozens.
        self.log_epoch_mean(f"{stage}/loss", loss, len(labels))
        self.log_epoch_sum(f"{stage}/acc", (self.classes(logits) == labels).sum(), len(labels))
        return loss

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log_best("val/acc", self.epoch_means["val/acc"], self.val_acc_best)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self.row_probabilities:
            rows = self.trainer.datamodule.data_test.tensors[0][:self.row_probabilities].to(self.device)
            for index, probability in enumerate(torch.sigmoid(self(rows)[:, 0])):
                self.log(f"test/p_row{index}", probability)

    def predict_step(self, batch, batch_idx):
        return self.classes(self(batch[0]))

    @torch.no_grad()
    def embeddings(self, kind: str = "features", limit: int | None = None, datamodule=None) -> tuple[torch.Tensor,
                                                                                                    list[str]]:
        """(features (N, F), class names): what the net's last nn.Linear takes in, for the first `limit` test
        samples of `datamodule` (prepared as in training), each labelled by its class (scripts/embed.py)."""
        if kind != "features":
            raise DlbookError(f"kind={kind!r}: a classifier's vectors are its penultimate-layer features "
                              f"(kind=features).")
        linears = [module for module in self.net.modules() if isinstance(module, nn.Linear)]
        if not linears:
            raise DlbookError(f"{type(self.net).__name__} has no nn.Linear layer whose inputs would be its features.")
        if datamodule.data_test is None:
            datamodule.setup("test")
        count = len(datamodule.data_test) if limit is None else min(limit, len(datamodule.data_test))
        inputs, labels = datamodule.on_after_batch_transfer(datamodule.data_test.__getitems__(list(range(count))), 0)
        captured = []
        hook = linears[-1].register_forward_pre_hook(lambda module, args: captured.append(args[0].flatten(1)))
        try:
            self(inputs.to(self.device))
        finally:
            hook.remove()
        names = getattr(self.data_spec, "class_names", ()) or getattr(self.data_spec, "target_names", ())
        return captured[-1].float().cpu(), [names[i] if i < len(names) else str(i) for i in labels.tolist()]

    def figures(self, stage: str) -> dict:
        """On tables of two features: the decision regions with the rows (training rows when training ends, test
        rows when testing ends), in the features' own units."""
        spec, datamodule = self.data_spec, self.trainer.datamodule
        if not isinstance(spec, TabularSpec) or spec.num_features != 2 or datamodule is None:
            return {}
        split = "train" if stage == "fit" else "test"
        features, labels = getattr(datamodule, f"data_{split}").tensors
        scaling = datamodule.scaling  # the rows arrive scaled (data.scaling); the figure is in their own units
        points = features * scaling.feature_scale + scaling.feature_offset
        offset, scale = scaling.feature_offset.to(self.device), scaling.feature_scale.to(self.device)
        training = self.training
        self.eval()  # no dropout in the picture
        figure, axes = new_figure()
        decision_regions(axes, lambda grid: self.classes(self((grid.to(self.device) - offset) / scale)), points)
        self.train(training)
        scatter(axes, points, labels, spec.target_names, edgecolors="black", linewidths=0.5)
        axes.set(xlabel=spec.feature_names[0], ylabel=spec.feature_names[1],
                 title=f"Decision regions, {split} rows")
        return {f"decision_regions_{split}": figure}


class SequenceClassificationTask(ClassificationTask):
    """One class for each whole token sequence (a review's sentiment), its net sized by the vocabulary: `vocab_size`,
    `pad_index` and `max_length` of the data's TokenSpec; `embedding.pretrained` starts its embedding from a word-vector
    file (see dlbook/data/vectors.py). A task of its own so that image and table nets are refused
    token data, and sequence nets images, by the data's kind before anything is built."""

    accepts = (TokenSpec,)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, embedding: dict | None = None, **settings):
        super().__init__(net, data_spec, optimizer, scheduler, **settings)
        use_pretrained_vectors(self.net, data_spec, **(embedding or {}))

    @staticmethod
    def build_net(net: Callable[..., nn.Module], data_spec: TokenSpec, num_outputs: int) -> nn.Module:
        if not data_spec.num_classes:
            raise IncompatibleDataError("it predicts one class a sequence; the data's targets are next tokens, "
                                        "with no classes")
        return net(vocab_size=data_spec.vocab_size, pad_index=data_spec.pad_index, max_length=data_spec.max_length,
                   num_classes=num_outputs)
