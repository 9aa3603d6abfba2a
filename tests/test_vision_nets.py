"""The vision nets: forward passes at the sizes each one claims, parameter counts against torchvision's, the
separable convolution's saving, GoogLeNet's auxiliary heads and their share of the loss, clear refusals, and a few
training steps that lower the loss."""

from functools import partial

import pytest
import torch
import torchvision
from torch import nn

from dlbook.data.spec import ImageSpec
from dlbook.errors import DlbookError, IncompatibleDataError
from dlbook.nets.vision.alexnet import AlexNet
from dlbook.nets.vision.densenet import DenseNet
from dlbook.nets.vision.inception import GoogLeNet
from dlbook.nets.vision.mobilenet import MobileNet
from dlbook.nets.vision.plain_cnn import PlainCNN
from dlbook.nets.vision.resnet import ResNet
from dlbook.nets.vision.squeezenet import SqueezeNet
from dlbook.nets.vision.vgg import VGG
from dlbook.nets.vision.xception import Xception
from dlbook.tasks.classification import ClassificationTask
from dlbook.train import train
from tests.datasets import write_mnist

WORKSHOP_BLOCKS = [{"channels": 64, "pool": 2}, {"channels": 64, "pool": 2}]

# Narrow versions of every net, each with the smallest image it takes and the stem that goes with it.
NARROW = {
    "plain_cnn": (partial(PlainCNN, conv_blocks=[{"channels": 4, "pool": 2}, {"channels": 8, "separable": True}],
                          hidden_sizes=[16], padding="same"), 8),
    "alexnet": (partial(AlexNet, width=0.05, classifier_width=16), 15),
    "vgg11": (partial(VGG, depth=11, width=4, classifier_width=16), 32),
    "resnet20": (partial(ResNet, depth=20, width=4), 4),
    "resnet18": (partial(ResNet, depth=18, width=4), 8),
    "resnet50": (partial(ResNet, depth=50, width=4), 8),
    "preact_resnet34": (partial(ResNet, depth=34, preact=True, width=4), 8),
    "preact_resnet50": (partial(ResNet, depth=50, preact=True, width=4), 8),
    "googlenet": (partial(GoogLeNet, width=0.1), 8),
    "mobilenet_v1": (partial(MobileNet, version=1, width_multiplier=0.1), 16),
    "mobilenet_v2": (partial(MobileNet, version=2, width_multiplier=0.1), 16),
    "densenet121": (partial(DenseNet, growth_rate=4), 8),
    "xception": (partial(Xception, width_multiplier=0.05, middle_blocks=1), 16),
    "squeezenet1_0": (partial(SqueezeNet, version="1.0"), 8),
    "squeezenet1_1": (partial(SqueezeNet, version="1.1"), 8),
}


def logits_of(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return net(images)


@pytest.mark.parametrize("name", NARROW)
@pytest.mark.parametrize("size", ["smallest", 32])
def test_narrow_nets_give_logits_of_their_smallest_and_cifar_images(name, size):
    factory, smallest = NARROW[name]
    side = smallest if size == "smallest" else size
    logits = logits_of(factory(input_shape=(3, side, side), num_classes=7), torch.randn(2, 3, side, side))
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", [name for name in NARROW if name not in ("plain_cnn", "resnet20", "vgg11")])
def test_narrow_nets_take_the_imagenet_stem_at_64_pixels(name):
    """stem=imagenet at 64 px, narrow (the full nets at 224 px are the test below)."""
    factory, _ = NARROW[name]
    net = factory(input_shape=(3, 64, 64), num_classes=5, stem="imagenet")
    assert logits_of(net, torch.randn(2, 3, 64, 64)).shape == (2, 5)


@pytest.mark.parametrize("factory", [
    AlexNet, pytest.param(partial(VGG, depth=11), marks=pytest.mark.slow), partial(ResNet, depth=18), partial(ResNet, depth=50),
    partial(ResNet, depth=34, preact=True), GoogLeNet, partial(MobileNet, version=1), MobileNet, DenseNet, Xception,
    SqueezeNet, partial(SqueezeNet, version="1.0")])
def test_full_nets_take_imagenet_images(factory):
    net = factory(input_shape=(3, 224, 224), num_classes=1000)
    assert logits_of(net, torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def parameters(net: nn.Module) -> int:
    return sum(parameter.numel() for parameter in net.parameters())


@pytest.mark.parametrize("ours, theirs", [
    (partial(VGG, depth=16), torchvision.models.vgg16),  # 138,357,544
    (partial(VGG, depth=19), torchvision.models.vgg19),  # 143,667,240
    (partial(ResNet, depth=50), torchvision.models.resnet50),  # 25,557,032
    (partial(ResNet, depth=18), torchvision.models.resnet18),
    (partial(DenseNet, depth=121), torchvision.models.densenet121),
    (partial(MobileNet, version=2), torchvision.models.mobilenet_v2),
    (partial(SqueezeNet, version="1.0"), torchvision.models.squeezenet1_0),
    (partial(SqueezeNet, version="1.1"), torchvision.models.squeezenet1_1),
])
def test_imagenet_nets_have_torchvisions_parameter_counts(ours, theirs):
    with torch.device("meta"):  # counted, never initialised
        assert parameters(ours(input_shape=(3, 224, 224), num_classes=1000)) == parameters(theirs(weights=None))


def test_vgg16_and_vgg19_have_the_published_parameter_counts():
    with torch.device("meta"):
        assert parameters(VGG((3, 224, 224), 1000, depth=16)) == 138_357_544
        assert parameters(VGG((3, 224, 224), 1000, depth=19)) == 143_667_240


def test_workshop_cnn_has_the_books_parameter_count():
    assert parameters(PlainCNN((1, 28, 28), 10, WORKSHOP_BLOCKS, hidden_sizes=[128])) == 243_786  # as Keras prints


def test_separable_convolution_has_fewer_parameters_than_the_standard_one():
    blocks = [{"channels": 32, "pool": 2}, {"channels": 64, "pool": 2}]
    standard = PlainCNN((1, 28, 28), 10, blocks, hidden_sizes=[256])
    separable = PlainCNN((1, 28, 28), 10, blocks, hidden_sizes=[256], separable=True)
    conv_weights = lambda net: sum(parameters(layer) for layer in net.features)  # noqa: E731
    # Standard 3x3 convs, 1 -> 32 and 32 -> 64 channels with biases; separable: 3x3 depthwise (no bias) then a 1x1
    # pointwise conv with biases.
    assert conv_weights(standard) == (1 * 32 * 9 + 32) + (32 * 64 * 9 + 64)
    assert conv_weights(separable) == (1 * 9 + 1 * 32 + 32) + (32 * 9 + 32 * 64 + 64)
    assert parameters(separable) < parameters(standard)
    images = torch.randn(2, 1, 28, 28)
    assert logits_of(separable, images).shape == logits_of(standard, images).shape == (2, 10)


def test_plain_cnn_starts_as_keras_with_xavier_uniform():
    net = PlainCNN((1, 28, 28), 10, WORKSHOP_BLOCKS, hidden_sizes=[128], init="xavier_uniform")
    second_conv = net.features[3]  # conv, ReLU, pool, conv
    bound = (6 / (64 * 9 + 64 * 9)) ** 0.5  # glorot-uniform: sqrt(6 / (fan_in + fan_out))
    assert second_conv.weight.abs().max() <= bound and second_conv.weight.abs().max() > 0.9 * bound
    assert all(not layer.bias.any() for layer in net.modules() if isinstance(layer, (nn.Conv2d, nn.Linear)))


def test_plain_cnn_pools_like_keras():
    """Valid convolutions and pools round down (28 -> 26 -> 13 -> 11 -> 5); same ones keep the size and round up
    (7 -> 4)."""
    valid = PlainCNN((1, 28, 28), 10, WORKSHOP_BLOCKS)
    assert valid.classifier[1].in_features == 64 * 5 * 5
    same = PlainCNN((1, 28, 28), 10, [{"channels": 4, "pool": 2}] * 3, padding="same")
    assert same.classifier[1].in_features == 4 * 4 * 4
    assert logits_of(same, torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_googlenet_uses_its_auxiliary_heads_in_training_only():
    net = GoogLeNet((3, 32, 32), 10, width=0.1)
    images = torch.randn(2, 3, 32, 32)
    net.train()
    logits, aux1, aux2 = net(images)
    assert logits.shape == aux1.shape == aux2.shape == (2, 10)
    assert not torch.equal(aux1, aux2)
    net.eval()
    assert isinstance(net(images), torch.Tensor)
    assert isinstance(GoogLeNet((3, 32, 32), 10, width=0.1, aux_classifiers=False).train()(images), torch.Tensor)


def test_classification_loss_adds_the_auxiliary_losses_weighted_by_0_3():
    torch.manual_seed(0)
    task = ClassificationTask(partial(GoogLeNet, width=0.1), ImageSpec((3, 32, 32), 10), optimizer=None)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    task.net.eval()  # BatchNorm on running statistics and no dropout: every pass below computes the same
    eval_loss = task.logits_and_loss(images, labels, "val")[1]
    task.net.training = True  # GoogLeNet's own flag alone: it returns its heads' logits, its layers stay as they are
    logits, aux1, aux2 = task.net(images)
    train_loss = task.logits_and_loss(images, labels, "train")[1]
    cross_entropy = nn.functional.cross_entropy
    torch.testing.assert_close(eval_loss, cross_entropy(logits, labels))
    torch.testing.assert_close(train_loss, cross_entropy(logits, labels) + 0.3 * (
        cross_entropy(aux1, labels) + cross_entropy(aux2, labels)))
    assert train_loss > eval_loss + 0.3  # each head's loss is about ln 10 at the start


@pytest.mark.parametrize("net, message", [
    (partial(VGG, (1, 28, 28), 10), "VGG16 takes images of at least 32x32 pixels, the data gives 28x28"),
    (partial(VGG, (3, 32, 32), 10, depth=12), r"model.net.depth=12 is not one of 11, 13, 16, 19"),
    (partial(ResNet, (3, 32, 32), 10, depth=40), r"model.net.depth=40 is not one of 18, 34, 50, 101, 152"),
    (partial(ResNet, (3, 224, 224), 10, depth=20, stem="imagenet"), r"the CIFAR ResNet-20 has only its own"),
    (partial(MobileNet, (1, 8, 8), 10), r"MobileNet v2 with the cifar stem takes images of at least 16x16"),
    (partial(MobileNet, (3, 32, 32), 10, version=3), r"model.net.version=3 is not one of 1, 2"),
    (partial(SqueezeNet, (3, 32, 32), 10, version="1.2"), r"model.net.version='1.2' is not one of 1.0, 1.1"),
    (partial(DenseNet, (3, 32, 32), 10, stem="resnet"), r"model.net.stem='resnet' is not one of auto, cifar"),
    (partial(PlainCNN, (1, 8, 8), 10, [{"channels": 4, "pool": 2}] * 3),
     "PlainCNN's conv block 1 leaves no pixels of the data's 8x8 images"),
    (partial(PlainCNN, (1, 8, 8), 10, [{"channels": 4, "stride": 2}]), r"needs `channels` and takes only channels"),
    (partial(PlainCNN, (1, 8, 8), 10, [{"channels": 4, "padding": "full"}]),
     r"conv_blocks\[0\].padding='full' is not one of valid, same"),
    (partial(PlainCNN, (1, 8, 8), 10, [{"channels": 4}], init="he"),
     r"model.net.init='he' is not one of default, xavier_uniform, zeros"),
    (partial(AlexNet, (3, 40, 40), 10, stem="imagenet"), "AlexNet with the imagenet stem takes images of at least "
                                                         "63x63 pixels, the data gives 40x40"),
    # a multiplier of 0 or below gave every layer the floor of 8 channels, silently; text failed on round()
    (partial(AlexNet, (3, 32, 32), 10, width=-1), r"model.net.width=-1 must be a finite number above 0 \(it scales"),
    (partial(GoogLeNet, (3, 32, 32), 10, width=0), r"model.net.width=0 must be a finite number above 0"),
    (partial(MobileNet, (3, 32, 32), 10, width_multiplier="abc"), r"model.net.width_multiplier=abc must be a finite"),
    (partial(Xception, (3, 32, 32), 10, width_multiplier=0), r"model.net.width_multiplier=0 must be a finite number"),
])
def test_unusable_settings_and_sizes_are_refused(net, message):
    with pytest.raises(DlbookError, match=message):
        net()


def test_too_small_images_are_incompatible_data():
    with pytest.raises(IncompatibleDataError):
        ResNet((3, 16, 16), 10, stem="imagenet")


def two_class_images(count: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images whose class is which half of the picture is brighter."""
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(count, 3, size, size, generator=generator), torch.arange(count) % 2
    images[labels == 0, :, :, : size // 2] += 1.0
    images[labels == 1, :, :, size // 2:] += 1.0
    return images, labels


@pytest.mark.parametrize("name", ["plain_cnn", "resnet20", "googlenet", "mobilenet_v2"])
def test_a_few_steps_lower_the_loss(name):
    torch.manual_seed(0)
    factory, smallest = NARROW[name]
    size = max(smallest, 8)
    net = factory(input_shape=(3, size, size), num_classes=2)
    task = ClassificationTask(lambda **shape: net, ImageSpec((3, size, size), 2), optimizer=None)
    images, labels = two_class_images(32, size)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        net.train()
        loss = task.logits_and_loss(images, labels, "train")[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize("overrides, message", [
    # torch builds a layer of width 0 and fails in the first forward pass, or trains nothing through it
    (["data=digits", "model=mlp", "model.net.hidden_sizes=[0]"],
     "model=mlp cannot be built: its layer net.layers.1.weight would have no weights (shape (0, 64)), as a width, "
     "channel count or multiplier is 0 or rounds to 0. Its model.net settings: hidden_sizes=[0], activation=relu"),
    (["data=digits", "model=densenet", "model.net.growth_rate=0"], "would have no weights (shape (0, 1, 3, 3))"),
    (["data=digits", "model=resnet9", "model.net.width=0"], "Its model.net settings: width=0"),
    (["data=digits", "model=mnist_cnn", "model.net.hidden_size=0"], "model=mnist_cnn cannot be built"),
    # failed as the first batch was scored
    (["data=digits", "model=resnet9", "model.label_smoothing=2"], "model.label_smoothing=2 must be a finite number "
                                                                   "from 0 to 1."),
    (["data=mnist", "model=lenet5", "model.net.activation=foo"], "model.net.activation='foo' is not one of relu, "
                                                                  "tanh, sigmoid, gelu, identity."),
    (["data=mnist", "model=capsnet", "model.net.routing_iterations=0"],
     "model.net.routing_iterations=0 must be a positive integer."),
    # trained the wrong way without a word
    (["data=digits", "model=inception", "model.net.aux_weight=-1"], "model.net.aux_weight=-1 must be a finite "
                                                                     "number from 0 up"),
    (["data=mnist", "model=capsnet", "model.reconstruction_weight=-1"], "model.reconstruction_weight=-1 must be a "
                                                                         "finite number from 0 up."),
    (["data=mnist", "model=capsnet", "model.present_margin=1.5"], "model.present_margin=1.5 must be a finite "
                                                                   "number from 0 to 1."),
], ids=["mlp_width", "densenet_growth", "resnet9_width", "mnist_cnn_hidden", "label_smoothing",
        "lenet5_activation", "capsnet_routing", "aux_weight", "capsnet_reconstruction", "capsnet_margin"])
def test_a_setting_that_would_fail_or_mistrain_is_refused_before_training(run_config, tmp_path, overrides, message):
    write_mnist(tmp_path / "data")
    with pytest.raises(DlbookError) as refused:
        train(run_config(["trainer.max_epochs=1", *overrides]))
    assert message in str(refused.value)
    assert not (tmp_path / "run" / "checkpoints").exists()
