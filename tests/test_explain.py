"""dlbook.interpret and scripts/explain.py: Grad-CAM finds the evidence where it is, guided backpropagation leaves the
net as it was, activation maximisation raises its class's score, and explain.py writes PNGs from a checkpoint."""

import pytest
import torch
from PIL import Image
from torch import nn

from dlbook import interpret
from dlbook.errors import DlbookError
from dlbook.train import train
from dlbook.utils.config import compose_run as dlbook_compose_run
from scripts.explain import explain
from tests.conftest import compose_run

SIZE = 16
CORNER = SIZE // 2  # the top-left quadrant


def corner_images(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise with a bright 4x4 square somewhere outside the top-left quadrant in every image; the label says whether
    another one sits inside that quadrant."""
    images = 0.1 * torch.randn(n, 1, SIZE, SIZE, generator=generator)
    labels = torch.randint(2, (n,), generator=generator)
    for image, label in zip(images, labels):
        row, column = torch.randint(CORNER, SIZE - 3, (2,), generator=generator).tolist()
        image[0, row:row + 4, column:column + 4] = 1.0  # bottom-right quadrant: in both classes
        if label:
            row, column = torch.randint(0, CORNER - 3, (2,), generator=generator).tolist()
            image[0, row:row + 4, column:column + 4] = 1.0
    return images, labels


def tiny_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 2))


@pytest.fixture(scope="module")
def corner_net():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    net = tiny_cnn()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        images, labels = corner_images(32, generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(images), labels).backward()
        optimizer.step()
    net.zero_grad(set_to_none=True)
    test_images, test_labels = corner_images(64, generator)
    assert (net(test_images).argmax(dim=1) == test_labels).float().mean() > 0.9
    return net, test_images[test_labels == 1]


def test_grad_cam_highlights_the_corner_that_decides_the_class(corner_net):
    net, images = corner_net
    heat = interpret.grad_cam(net, images, torch.ones(len(images), dtype=torch.long))  # default: the last conv
    assert heat.shape == (len(images), SIZE, SIZE) and heat.min() >= 0 and heat.amax(dim=(1, 2)).allclose(
        torch.ones(len(images)))
    corner = heat[:, :CORNER, :CORNER].mean()
    elsewhere = (heat.sum() - heat[:, :CORNER, :CORNER].sum()) / (heat.numel() * 3 / 4)
    assert corner > 1.5 * elsewhere


def test_saliency_and_guided_backprop_have_the_image_shapes_and_leave_the_net_as_it_was(corner_net):
    net, images = corner_net
    net.train()
    modules_before = [(name, module) for name, module in net.named_modules()]
    assert interpret.saliency(net, images[:3]).shape == (3, SIZE, SIZE)
    guided = interpret.guided_backprop(net, images[:3])
    assert guided.shape == (3, 1, SIZE, SIZE) and guided.abs().sum() > 0
    assert interpret.guided_grad_cam(net, images[:3], layer="3").shape == (3, 1, SIZE, SIZE)
    assert [(name, module) for name, module in net.named_modules()] == modules_before  # the same ReLU objects
    assert all(not module._forward_hooks and not module._backward_hooks for module in net.modules())
    assert net.training and all(p.grad is None for p in net.parameters())


def test_guided_relu_passes_only_positive_gradients_where_the_input_was_positive():
    x = torch.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    interpret.GuidedReLU()(x).mul(torch.tensor([5.0, -4.0, 6.0])).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 6.0]


def test_activation_maximization_raises_the_class_score(corner_net):
    net, _ = corner_net
    image, first, last = interpret.activation_maximization(net, 1, (1, SIZE, SIZE), steps=30, seed=0)
    assert image.shape == (1, SIZE, SIZE) and last > first + 1.0
    again, _, _ = interpret.activation_maximization(net, 1, (1, SIZE, SIZE), steps=30, seed=0)
    assert torch.equal(image, again)


def test_one_logit_scores_class_one_by_the_logit_and_class_zero_by_its_negative():
    logits = torch.tensor([[2.0], [-3.0]])
    scores, targets = interpret.class_scores(logits, None)
    assert scores.tolist() == [2.0, 3.0] and targets.tolist() == [1, 0]
    assert interpret.class_scores(logits, torch.tensor([0, 1]))[0].tolist() == [-2.0, -3.0]


def test_feature_maps_and_filters_are_the_layer_outputs_and_weights(corner_net):
    net, images = corner_net
    assert interpret.feature_maps(net, images[:2], "0").shape == (2, 8, SIZE, SIZE)
    assert torch.equal(interpret.first_layer_filters(net), net[0].weight)
    with pytest.raises(DlbookError, match=r"layer='9' is not a layer of the net. Its convolutions: 0, 3"):
        interpret.grad_cam(net, images[:2], layer="9")


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A small CNN trained briefly on the digits, tested with the explanations callback; and five digit PNGs."""
    root = tmp_path_factory.mktemp("explain")
    _, objects = train(compose_run(root, ["model=mnist_cnn", "model.net.channels=[4,8]", "model.net.hidden_size=16",
                                          "trainer.max_epochs=1", "++trainer.limit_train_batches=5",
                                          "callbacks=[default,explanations]", "callbacks.explanations.num_images=4"]))
    folder = root / "digits"
    folder.mkdir()
    for index, image in enumerate(objects["datamodule"].data_test.tensors[0][:5]):
        Image.fromarray(image[0].numpy()).save(folder / f"{index}.png")
    return root


def explained(root, *overrides, name="explain"):
    return explain(dlbook_compose_run([f"paths.log_dir={root / 'outputs'}", f"ckpt_path={root / 'run'}",
                                       f"output_dir={root / name}", *overrides], root / name, "explain"))


def test_testing_with_the_explanations_callback_writes_its_grids(checkpoint_dir):
    for method in ("gradcam", "saliency"):
        with Image.open(checkpoint_dir / "run" / "explanations" / f"{method}.png") as grid:
            assert grid.size[0] > 4 * 8 and grid.mode == "RGB"


@pytest.mark.parametrize("method, files", [("gradcam", 5), ("guided_gradcam", 5), ("feature_maps", 5),
                                           ("filters", 1), ("activation_max", 1)])
def test_explain_writes_a_png_per_image(checkpoint_dir, method, files):
    written = explained(checkpoint_dir, f"image={checkpoint_dir / 'digits'}", f"method={method}", "target=3",
                        "steps=5", name=method)
    assert len(written) == files and all(path.suffix == ".png" and path.stat().st_size > 0 for path in written)
    assert written[0].parent == checkpoint_dir / method / method


def test_images_of_one_name_in_two_formats_each_get_their_own_explanation(checkpoint_dir):
    folder = checkpoint_dir / "two_formats"
    folder.mkdir()
    with Image.open(checkpoint_dir / "digits" / "0.png") as image:
        image.save(folder / "0.png")
        image.save(folder / "0.jpg")
    written = explained(checkpoint_dir, f"image={folder}", "method=saliency", name="two_formats")
    assert sorted(path.name for path in written) == ["0_jpg.png", "0_png.png"]
    assert all(path.is_file() for path in written)


@pytest.mark.parametrize("override, message", [
    ("method=gradcamm", "method=gradcamm is not one of gradcam, saliency, guided_backprop, guided_gradcam, "
                        "feature_maps, filters, activation_max"),
    ("layer=features.9", r"layer='features.9' is not a layer of the net. Its convolutions: features.0, features.3"),
    ("target=ten", "target=ten is not one of the model's classes: 0, 1, 2"),
])
def test_bad_choices_are_refused_with_the_valid_ones(checkpoint_dir, override, message):
    with pytest.raises(DlbookError, match=message):
        explained(checkpoint_dir, f"image={checkpoint_dir / 'digits'}", override, name="bad")


def test_explain_composes_with_a_wandb_logger(tmp_path):
    cfg = dlbook_compose_run(["ckpt_path=x", "logger=wandb", f"paths.log_dir={tmp_path}"], tmp_path / "run", "explain")
    assert cfg.logger.wandb.tags == ["explain"] and cfg.logger.wandb.save_dir == str(tmp_path / "run")
