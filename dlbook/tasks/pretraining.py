"""Classifiers pretrained without labels first (Pro DL ch. 5): a deep belief net's RBMs by contrastive divergence, or
an autoencoder whose codes a softmax layer then classifies."""

from collections.abc import Callable

import torch
from torch import nn

from dlbook.data.spec import DataSpec, ImageSpec
from dlbook.errors import DlbookError, check_count
from dlbook.tasks.classification import ClassificationTask


def greedy_layer(epoch: int, epochs_per_layer: int, layers: int) -> int | None:
    """The layer greedy layer-wise pretraining trains in `epoch`, `epochs_per_layer` epochs each from the bottom, or
    None once the pretraining is over (or with none)."""
    return epoch // epochs_per_layer if epoch < epochs_per_layer * layers else None


class PretrainedClassificationTask(ClassificationTask):
    """For `pretrain_epochs` epochs per layer of the net's `pretrain_layers`, greedily from the bottom, each training
    batch runs the net's `pretrain_step(images, layer)`, which updates the layer itself (a CD step) or returns a loss
    for the optimizer (an autoencoder's); `pretrain/loss` and `pretrain/mse` log it to the loggers' history. The
    classifier's own train/loss and train/acc are measured all along, so the epochs of pretraining show where it
    starts from. A resumed run, or one restored with ckpt_restore=weights and model.pretrain_epochs=0, keeps the
    pretraining it finds in the checkpoint."""

    accepts = (ImageSpec,)

    def __init__(self, net: Callable[..., nn.Module], data_spec: DataSpec, optimizer: Callable,
                 scheduler: dict | None = None, pretrain_epochs: int = 1, **settings):
        super().__init__(net, data_spec, optimizer, scheduler, **settings)
        if not hasattr(self.net, "pretrain_step"):
            raise DlbookError(f"{type(self.net).__name__} has no unsupervised pretraining (pretrain_step); "
                              f"model.net must be a deep belief net or an autoencoder classifier.")
        check_count("model.pretrain_epochs", pretrain_epochs, least=0, note=" (epochs per layer)")
        self.pretrain_epochs = pretrain_epochs

    @property
    def one_process_only(self) -> str | None:
        if self.pretrain_epochs and getattr(self.net, "pretrains_by_its_own_rule", False):
            return ("pretrains by a rule of its own (contrastive divergence), which DDP would let drift apart "
                    "between processes (with model.pretrain_epochs=0 it fine-tunes a pretrained checkpoint under DDP)")
        return None

    @property
    def steps_use_part_of_the_model(self) -> bool:
        return True  # pretraining leaves the head out, classifying the decoder (or the RBMs' visible biases)

    def training_step(self, batch, batch_idx):
        layer = greedy_layer(self.current_epoch, self.pretrain_epochs, self.net.pretrain_layers)
        if layer is None:
            return super().training_step(batch, batch_idx)
        images, _ = batch
        loss, mse = self.net.pretrain_step(images, layer)
        self.log_epoch_mean("pretrain/mse", mse, len(images))
        with torch.no_grad():
            self.loss_step(batch, "train")
        if loss is not None:
            self.watch_loss(loss)
            self.log_epoch_mean("pretrain/loss", loss, len(images))
        return loss  # None: the CD step has updated the layer, nothing for the optimizer

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log_epoch_means("pretrain/", history_only=True)
