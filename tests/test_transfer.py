"""model=pretrained: torchvision classifiers by name with a new head, frozen units that stay fixed, and clear errors
for unknown names and for weights that cannot be downloaded. Random weights only: nothing is downloaded."""

import urllib.error

import pytest
import torch
from torch import nn

from dlbook.assembly import without_pretrained_weights
from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.nets.vision.pretrained import PretrainedClassifier


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.mark.parametrize("name, head, kind", [("resnet18", "fc", nn.Linear),
                                              ("mobilenet_v3_small", "classifier.3", nn.Linear),
                                              ("squeezenet1_1", "classifier.1", nn.Conv2d)])  # no Linear layer
def test_the_last_layer_is_replaced_for_the_data_classes(name, head, kind):
    net = PretrainedClassifier((1, 32, 32), 7, name=name, weights=None)
    assert net.head_name == head and isinstance(net.head, kind)
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 7)  # grey images are repeated to RGB


def test_all_but_head_leaves_only_the_head_trainable():
    net = PretrainedClassifier((3, 16, 16), 5, name="resnet18", weights=None, freeze="all_but_head")
    assert trainable(net) == trainable(net.head) == 512 * 5 + 5


def test_freeze_k_freezes_the_first_k_units_and_keeps_their_batch_norm_in_eval_mode():
    net = PretrainedClassifier((3, 16, 16), 5, name="resnet18", weights=None, freeze=3)
    assert net.unit_names()[:4] == ["conv1", "bn1", "layer1.0", "layer1.1"]
    model = net.model
    frozen = [model.conv1, model.bn1, model.layer1[0]]
    assert all(not p.requires_grad for unit in frozen for p in unit.parameters())
    assert all(p.requires_grad for p in model.layer1[1].parameters())
    assert trainable(net) == sum(p.numel() for p in net.parameters()) - sum(p.numel() for unit in frozen for p in unit.parameters())
    net.train()
    assert not model.bn1.training and not model.layer1[0].bn1.training and model.layer1[1].bn1.training


def test_a_training_step_moves_the_head_and_leaves_the_frozen_layers_as_they_were():
    torch.manual_seed(0)
    net = PretrainedClassifier((3, 16, 16), 4, name="resnet18", weights=None, freeze=4).train()
    before = {name: value.clone() for name, value in net.state_dict().items()}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    nn.functional.cross_entropy(net(torch.rand(8, 3, 16, 16)), torch.arange(8) % 4).backward()
    optimizer.step()
    after = net.state_dict()
    frozen = ("model.conv1.", "model.bn1.", "model.layer1.")  # running statistics included
    assert all(torch.equal(after[name], value) for name, value in before.items() if name.startswith(frozen))
    assert not torch.equal(after["model.fc.weight"], before["model.fc.weight"])
    assert not torch.equal(after["model.layer2.0.bn1.running_mean"], before["model.layer2.0.bn1.running_mean"])


def unreachable(url, *args, **kwargs):
    raise urllib.error.URLError("no network")


def test_a_failed_download_says_where_to_put_the_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    with pytest.raises(DlbookError, match="could not be downloaded") as error:
        PretrainedClassifier((3, 32, 32), 10, name="resnet18", weights="DEFAULT")
    message = str(error.value)
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message and "TORCH_HOME" in message
    assert "resnet18-" in message and "model.net.weights=null" in message


def test_a_checkpoint_rebuild_keeps_the_weights_input_scaling_without_downloading(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    net = PretrainedClassifier((3, 32, 32), 10, name="resnet18", weights="DEFAULT", load_weights=False)
    assert net.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])


@pytest.mark.parametrize("options, error, message", [
    ({"name": "resnet_18"}, DlbookError, "model.net.name='resnet_18' is not a torchvision classification model. "
                                         "Close matches: resnet18"),
    ({"weights": "IMAGENET"}, DlbookError, "use DEFAULT, IMAGENET1K_V1, or null"),
    ({"freeze": True}, DlbookError, "model.net.freeze=True must be null, all_but_head, or a number"),
    ({"freeze": 11}, DlbookError, "a number of units from 0 to 10 .* of resnet18: conv1, bn1, layer1.0"),
    ({"weights": "DEFAULT", "input_normalization": "standard"}, DlbookError, "set data.normalization=unit"),
    ({"name": "squeezenet1_1"}, IncompatibleDataError, "at least 17x17 pixels, the data gives 8x8"),
])
def test_bad_choices_are_refused_with_the_valid_ones(options, error, message):
    with pytest.raises(error, match=message):
        PretrainedClassifier((1, 8, 8), 10, **{"name": "resnet18", "weights": None, **options})


def test_a_run_rebuilt_from_its_checkpoint_does_not_read_the_weights_again(run_config):
    cfg = run_config(["model=pretrained"])
    assert cfg.model.net.weights == "DEFAULT" and cfg.model.net.load_weights and cfg.data.normalization == "unit"
    assert without_pretrained_weights(cfg).model.net.load_weights is False
