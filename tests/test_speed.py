"""The GPU-path options on the CPU: torch.compile, channels-last, data on the device, the ResNet-9, validating
on the test set, and the time-to-target callback."""

import json
import logging

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from dlbook.callbacks.time_to_target import TimeToTarget
from dlbook.data.digits import DigitsDataModule
from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.eval import evaluate
from dlbook.nets.classification.resnet9 import ResNet9
from dlbook.train import train
from tests.datasets import write_cifar10, write_mnist

SMALL_RESNET9 = ["model=resnet9", "model.net.width=8", "data=cifar10", "data.download=false"]


class BatchLayouts(Callback):
    """Records, per stage, whether each batch reaching the net is channels-last."""

    def __init__(self):
        self.layouts = {}

    def on_fit_start(self, trainer, module):
        def record(net, args):
            stage = "train" if net.training else "val"
            self.layouts.setdefault(stage, set()).add(args[0].is_contiguous(memory_format=torch.channels_last))

        module.net.register_forward_pre_hook(record)


@pytest.mark.slow  # two minutes of torch.compile on the CPU
def test_compiled_nets_learn_and_their_checkpoint_evaluates_uncompiled(run_config, tmp_path):
    from torch._dynamo.utils import counters

    counters.clear()
    # Batch sizes that divide the splits (1293 train, 144 val, 360 test): one graph for training, one for eval.
    trained, objects = train(run_config(["compile=true", "trainer.max_epochs=3", "data.batch_size=431",
                                         "+data.eval_batch_size=72"]))
    assert objects["model"].net._compiled_call_impl is not None  # compiled in place
    assert counters["stats"]["unique_graphs"] >= 2  # the forward of training and of evaluation
    assert trained["test/acc"] > 0.5  # chance is 0.1
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    keys = torch.load(best, weights_only=True)["state_dict"]
    assert not [key for key in keys if "_orig_mod" in key]
    evaluated, eval_objects = evaluate(run_config([f"ckpt_path={best}"], config_name="eval", run_name="eval"))
    assert eval_objects["model"].net._compiled_call_impl is None
    assert evaluated["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)


def test_unknown_compile_mode_lists_the_valid_ones(run_config):
    with pytest.raises(DlbookError, match="compile=fastest is not one of false, true, default, .*max-autotune"):
        train(run_config(["compile=fastest"]))


def test_compile_refuses_the_double_backward_of_wgan_gp(run_config, tmp_path):
    write_mnist(tmp_path / "data")
    with pytest.raises(DlbookError, match="torch.compile cannot train model.loss=wasserstein_gp.*compile=false"):
        train(run_config(["compile=true", "model=wgan_gp", "data=mnist", "data.download=false"]))


def test_channels_last_weights_and_batches_and_the_resnet9_learns(run_config, tmp_path):
    write_cifar10(tmp_path / "data")
    cfg = run_config([*SMALL_RESNET9, "channels_last=true", "trainer.max_epochs=3", "optimizer.lr=3e-3",
                      "+callbacks.layouts._target_=tests.test_speed.BatchLayouts"])
    metrics, objects = train(cfg)
    (layouts,) = [callback for callback in objects["trainer"].callbacks if isinstance(callback, BatchLayouts)]
    assert layouts.layouts == {"train": {True}, "val": {True}}
    conv_weights = [p for p in objects["model"].parameters() if p.ndim == 4]
    assert conv_weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in conv_weights)
    assert metrics["test/acc"] > 0.5


def test_data_on_device_lands_on_the_trainers_device_and_keeps_the_batch_order(run_config):
    metrics, objects = train(run_config(["data_on_device=true", "trainer.max_epochs=1"]))
    datamodule, device = objects["datamodule"], objects["trainer"].strategy.root_device
    assert datamodule.on_device
    for dataset in (datamodule.data_train, datamodule.data_val, datamodule.data_test):
        assert dataset.images.device == device and dataset.labels.device == device

    def label_order(on_device: bool, epoch: int) -> torch.Tensor:
        host = DigitsDataModule(batch_size=64, shuffle_seed=3, on_device=on_device)
        host.trainer = objects["trainer"]
        host.setup("fit")
        loader = host.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return torch.cat([labels.cpu() for _, labels in loader])

    for epoch in (0, 1):  # what a resumed run replays
        assert torch.equal(label_order(True, epoch), label_order(False, epoch))


def test_validating_on_the_test_set(tmp_path):
    datamodule = DigitsDataModule(val_fraction=0.0, validate_on_test=True)
    datamodule.setup("fit")
    assert datamodule.data_val is datamodule.data_test and len(datamodule.data_train) == 1797 - 360
    with pytest.raises(DlbookError, match="data.val_fraction=0 .it is 0.1"):
        DigitsDataModule(val_fraction=0.1, validate_on_test=True)


def test_resnet9_refuses_images_below_8_pixels():
    assert ResNet9((3, 32, 32), 10)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(IncompatibleDataError, match="at least 8x8 pixels, the data gives 6x6"):
        ResNet9((1, 6, 6), 10)


def test_time_to_target_is_logged_and_stops_training(run_config, tmp_path):
    cfg = run_config(["callbacks=[default,time_to_target]", "callbacks.time_to_target.target=0.5",
                      "callbacks.time_to_target.stop_on_target=true", "trainer.max_epochs=20",
                      "data.val_fraction=0", "+data.validate_on_test=true", "logger=csv"])
    metrics, objects = train(cfg)
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0 < summary["time_to_target"] and summary["epochs_to_target"] == objects["trainer"].current_epoch < 20
    assert summary["test/acc"] >= 0.5  # the test set is the validation set: best.ckpt reached the target


def test_time_to_target_never_reached_logs_nothing(run_config, tmp_path, caplog):
    cfg = run_config(["callbacks=[default,time_to_target]", "callbacks.time_to_target.target=1.01",
                      "trainer.max_epochs=1"])
    with caplog.at_level(logging.INFO, logger="dlbook.callbacks.time_to_target"):
        train(cfg)
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "time_to_target" not in summary and "epochs_to_target" not in summary
    assert "val/acc did not reach 1.01" in caplog.text and "no time_to_target is logged" in caplog.text


def test_a_time_to_target_monitor_no_validation_logs_is_refused_at_the_first_epoch(run_config):
    cfg = run_config(["callbacks=[default,time_to_target]", "callbacks.time_to_target.monitor=val/acuracy",
                      "trainer.max_epochs=3"])
    with pytest.raises(DlbookError, match=r"callbacks.time_to_target.monitor=val/acuracy is not logged by this "
                                          r"run's validation; what it logs: .*val/acc"):
        train(cfg)  # it could never be reached


def test_time_to_target_adds_the_time_of_the_run_it_resumes():
    callback = TimeToTarget()
    callback.load_state_dict({"elapsed": 100.0, "seconds": None, "epochs": None, "best": 0.5})
    callback.on_fit_start(None, None)
    assert 100.0 <= callback.elapsed() < 101.0 and callback.state_dict()["elapsed"] >= 100.0
    with pytest.raises(DlbookError, match="mode='up' is not one of max, min"):
        TimeToTarget(mode="up")
