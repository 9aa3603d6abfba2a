"""Classification of labelled images, of table rows with class targets, or of token sequences (reviews): cross-entropy
on logits, or, with `binary`, one logit and binary cross-entropy (logistic regression, the books' nets with one
sigmoid output)."""

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from dlbook.data.spec import DataSpec, ImageSpec, TabularSpec, TokenSpec
from dlbook.data.vectors import use_pretrained_vectors
from dlbook.errors import DlbookError, IncompatibleDataError, check_count, check_number
from dlbook.plots import confusion_matrix, decision_regions, image_grid, new_figure, scatter
from dlbook.tasks.base import LossTask


class ClassificationTask(LossTask):
    """`binary`: one logit for two-class data, trained with BCE on the logit and read as class 1 where it is
    positive. `row_probabilities` (with binary, on tables): the probability of class 1 of the first that many
    test rows, logged as `test/p_row<i>`, as the books print them for truth tables. On tables of two features, the
    figures are the decision regions with the training and the test rows.

    Testing also reports per class: `test/precision/<class>`, `test/recall/<class>` and `test/f1/<class>` (and
    `test/f1_macro`) from the confusion matrix (torchmetrics), drawn as figures/confusion_matrix.png; the first
    `report_examples` misclassified test samples are drawn (images) and, in W&B, listed in the table
    test/misclassified with their label and prediction."""

    accepts = (ImageSpec, TabularSpec)
    summary_metrics = (("test/acc", "Test accuracy"),)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, label_smoothing: float = 0.0, binary: bool = False,
                 row_probabilities: int = 0, report_examples: int = 16):
        super().__init__(data_spec, optimizer, scheduler)
        check_number("model.label_smoothing", label_smoothing, 0, 1)  # torch checks it only in the first step
        check_count("model.row_probabilities", row_probabilities, least=0)
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
        self.test_confusion = MulticlassConfusionMatrix(data_spec.num_classes)
        self.confusion_matrix: torch.Tensor | None = None  # the last test's, (true class, predicted class)
        self.report_examples = report_examples
        self.misclassified: list[tuple[torch.Tensor, int, int]] = []  # (input, label, prediction), on the CPU

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
        """Logits: (N, classes), or (N, 1) with binary; of a net with auxiliary classifiers, its main logits."""
        outputs = self.net(inputs)
        return outputs[0] if isinstance(outputs, tuple) else outputs

    def classes(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits[:, 0] > 0).long() if self.binary else logits.argmax(dim=1)

    def logits_and_loss(self, inputs: torch.Tensor, labels: torch.Tensor, stage: str) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
        """The batch's logits and loss: what a classifier with a loss of its own (capsules) changes."""
        outputs = self.net(inputs)
        logits, *auxiliary = outputs if isinstance(outputs, tuple) else (outputs,)
        loss = self.criterion_on(logits, labels)
        if auxiliary:  # GoogLeNet's auxiliary classifiers, in training: their losses weighted by the net's aux_weight
            loss = loss + self.net.aux_weight * sum(self.criterion_on(aux, labels) for aux in auxiliary)
        return logits, loss

    def criterion_on(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.criterion(logits[:, 0], labels.float()) if self.binary else self.criterion(logits, labels)

    def loss_step(self, batch, stage: str) -> torch.Tensor:
        inputs, labels = batch
        logits, loss = self.logits_and_loss(inputs, labels, stage)
        predicted = self.classes(logits)
        # Summed on the device and logged once per epoch: a few kernels a step where torchmetrics' accuracy and
        # mean launch dozens.
        self.log_epoch_mean(f"{stage}/loss", loss, len(labels))
        self.log_epoch_sum(f"{stage}/acc", (predicted == labels).sum(), len(labels))
        if stage == "test":
            self.test_confusion.update(predicted, labels)
            if len(self.misclassified) < self.report_examples:
                wrong = (predicted != labels).nonzero()[:self.report_examples - len(self.misclassified), 0].cpu()
                self.misclassified += [(inputs[i].cpu(), int(labels[i]), int(predicted[i])) for i in wrong]
        return loss

    @property
    def class_names(self) -> list[str]:
        names = getattr(self.data_spec, "class_names", ()) or getattr(self.data_spec, "target_names", ())
        return [str(names[i]) if i < len(names) else str(i) for i in range(self.data_spec.num_classes)]

    def on_test_epoch_start(self) -> None:
        self.misclassified = []

    def log_class_report(self) -> None:
        """Per-class precision, recall and F1 of the test set's confusion matrix, and the macro F1."""
        matrix = self.test_confusion.compute().double()
        self.test_confusion.reset()
        self.confusion_matrix = matrix.long().cpu()
        hits = matrix.diagonal()
        precision, recall = hits / matrix.sum(dim=0).clamp(min=1), hits / matrix.sum(dim=1).clamp(min=1)
        f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
        for index, name in enumerate(self.class_names):
            key = name.replace("/", "_")  # a slash would nest the name in W&B's panels
            self.log(f"test/precision/{key}", precision[index].float())
            self.log(f"test/recall/{key}", recall[index].float())
            self.log(f"test/f1/{key}", f1[index].float())
        self.log("test/f1_macro", f1.mean().float())
        if self.trainer.is_global_zero:
            self.log_misclassified_table()

    def log_misclassified_table(self) -> None:
        from lightning.pytorch.loggers import WandbLogger

        loggers = [logger for logger in self.loggers if isinstance(logger, WandbLogger)]
        if not loggers or not self.misclassified:
            return
        import wandb

        names, rows = self.class_names, []
        for sample, label, predicted in self.misclassified:
            if isinstance(self.data_spec, ImageSpec):
                shown = wandb.Image(rescaled(sample).permute(1, 2, 0).squeeze(-1).numpy())
            elif isinstance(self.data_spec, TokenSpec) and self.data_spec.vocabulary:
                shown = self.data_spec.separator.join(self.data_spec.vocabulary[i] for i in sample.tolist() if i)
            else:
                shown = ", ".join(f"{value:.4g}" for value in sample.tolist())
            rows.append([shown, names[label], names[predicted]])
        for logger in loggers:
            logger.log_table("test/misclassified", columns=["input", "label", "predicted"], data=rows)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log_best("val/acc", self.epoch_means["val/acc"], self.val_acc_best)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.log_class_report()
        if self.row_probabilities:
            rows = self.trainer.datamodule.data_test.tensors[0][:self.row_probabilities].to(self.device)
            for index, probability in enumerate(torch.sigmoid(self(rows)[:, 0])):
                self.log(f"test/p_row{index}", probability)

    def predict_step(self, batch, batch_idx):
        return self.classes(self(batch[0]))

    @torch.no_grad()
    def embeddings(self, kind: str = "features", limit: int | None = None, datamodule=None) -> tuple[torch.Tensor,
                                                                                                    list[str]]:
        """(features (N, F), class names): the `features` of the first `limit` test samples of `datamodule`
        (prepared as in training), each labelled by its class (scripts/embed.py)."""
        if kind != "features":
            raise DlbookError(f"kind={kind!r}: a classifier's vectors are its penultimate-layer features "
                              f"(kind=features).")
        if datamodule.data_test is None:
            datamodule.setup("test")
        count = len(datamodule.data_test) if limit is None else min(limit, len(datamodule.data_test))
        inputs, labels = datamodule.on_after_batch_transfer(datamodule.data_test.__getitems__(list(range(count))), 0)
        names = getattr(self.data_spec, "class_names", ()) or getattr(self.data_spec, "target_names", ())
        return (self.features(inputs.to(self.device)).float().cpu(),
                [names[i] if i < len(names) else str(i) for i in labels.tolist()])

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """What the net's last nn.Linear takes in, flattened (N, F)."""
        linears = [module for module in self.net.modules() if isinstance(module, nn.Linear)]
        if not linears:
            raise DlbookError(f"{type(self.net).__name__} has no nn.Linear layer whose inputs would be its features.")
        captured = []
        hook = linears[-1].register_forward_pre_hook(lambda module, args: captured.append(args[0].flatten(1)))
        try:
            self(inputs)
        finally:
            hook.remove()
        return captured[-1]

    def figures(self, stage: str) -> dict:
        """On tables of two features: the decision regions with the rows (training rows when training ends, test
        rows when testing ends), in the features' own units."""
        spec, datamodule = self.data_spec, self.trainer.datamodule
        figures = self.report_figures() if stage == "test" else {}
        if not isinstance(spec, TabularSpec) or spec.num_features != 2 or datamodule is None:
            return figures
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
        return {**figures, f"decision_regions_{split}": figure}

    def report_figures(self) -> dict:
        """The test set's confusion matrix, and its first misclassified images with their label and prediction."""
        figures = {}
        if self.confusion_matrix is not None:
            figures["confusion_matrix"] = confusion_matrix(self.confusion_matrix, self.class_names)
        if self.misclassified and isinstance(self.data_spec, ImageSpec):
            names = self.class_names
            figures["misclassified_test"] = image_grid(
                [rescaled(sample) for sample, _, _ in self.misclassified],
                [f"{names[label]} -> {names[predicted]}" for _, label, predicted in self.misclassified])
        return figures


def rescaled(image: torch.Tensor) -> torch.Tensor:
    """A normalised image (C, H, W) stretched to [0, 1] for display."""
    image = image.float()
    return (image - image.min()) / (image.max() - image.min()).clamp(min=1e-8)


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
