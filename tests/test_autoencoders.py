"""Autoencoders, VAEs, RBMs and DBNs (model=ae ... dbn): the pieces checked against hand computations, and what the
trained models give scripts/sample.py and scripts/embed.py. That every model trains is in test_models.py."""

import math

import pytest
import torch
from sklearn.datasets import load_digits

from dlbook.errors import DlbookError
from dlbook.nets.autoencoder.conv import ConvAutoencoder
from dlbook.nets.autoencoder.mlp import MLPAutoencoder
from dlbook.nets.autoencoder.noise import corruption
from dlbook.nets.autoencoder.penalties import ContractivePenalty, SparsityPenalty
from dlbook.nets.autoencoder.rbm import BernoulliRBM
from dlbook.nets.autoencoder.vae import VAE
from dlbook.tasks.reconstruction import gaussian_kl
from dlbook.train import train
from dlbook.utils.config import compose_run

DIGITS = ["data=digits", "trainer.max_epochs=1", "logger=csv"]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_cd1_matches_a_hand_computed_gradient_on_a_3x2_rbm():
    rbm = BernoulliRBM(num_visible=3, num_hidden=2)
    weights, b, c = [[0.5, -1.0, 0.25], [-0.3, 0.8, 1.2]], [0.1, -0.2, 0.3], [-0.4, 0.6]
    with torch.no_grad():
        rbm.weight.copy_(torch.tensor(weights))
        rbm.visible_bias.copy_(torch.tensor(b))
        rbm.hidden_bias.copy_(torch.tensor(c))
    data = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    torch.manual_seed(3)
    (d_weight, d_visible, d_hidden), negative = rbm.contrastive_divergence(torch.tensor(data), k=1)

    # By hand: p(h|v), a sample of h, p(v|h), a sample of v', p(h|v'), with the same draws as the RBM's.
    def hidden_probs(v):
        return [sigmoid(c[j] + sum(weights[j][i] * v[i] for i in range(3))) for j in range(2)]

    def visible_probs(h):
        return [sigmoid(b[i] + sum(weights[j][i] * h[j] for j in range(2))) for i in range(3)]

    torch.manual_seed(3)
    h0 = torch.bernoulli(torch.tensor([hidden_probs(v) for v in data])).tolist()
    v1 = torch.bernoulli(torch.tensor([visible_probs(h) for h in h0])).tolist()
    assert negative.tolist() == v1
    p0, p1 = [hidden_probs(v) for v in data], [hidden_probs(v) for v in v1]
    expected_weight = [[sum(p0[n][j] * data[n][i] - p1[n][j] * v1[n][i] for n in range(2)) / 2 for i in range(3)]
                       for j in range(2)]
    assert torch.allclose(d_weight, torch.tensor(expected_weight), atol=1e-6)
    assert d_visible.tolist() == pytest.approx([sum(data[n][i] - v1[n][i] for n in range(2)) / 2 for i in range(3)],
                                               abs=1e-6)
    assert d_hidden.tolist() == pytest.approx([sum(p0[n][j] - p1[n][j] for n in range(2)) / 2 for j in range(2)],
                                              abs=1e-6)


def test_persistent_chains_continue_where_they_stopped():
    torch.manual_seed(0)
    rbm, data = BernoulliRBM(6, 4, init_std=1.0), torch.bernoulli(torch.full((5, 6), 0.5))
    chains = torch.bernoulli(torch.full((3, 6), 0.5))
    torch.manual_seed(1)
    (_, d_visible, _), negative = rbm.contrastive_divergence(data, k=2, chains=chains)
    torch.manual_seed(1)
    rbm.hidden_probs(data)  # draws nothing: the chains' two steps are the only draws
    assert torch.equal(negative, rbm.gibbs(chains, 2)) and len(negative) == 3
    assert torch.allclose(d_visible, data.mean(0) - negative.mean(0))


def test_free_energy_is_minus_the_log_of_the_summed_out_hidden_units():
    torch.manual_seed(0)
    rbm, v = BernoulliRBM(4, 3, init_std=1.0), torch.bernoulli(torch.full((2, 4), 0.5))
    hiddens = torch.tensor([[(code >> j) & 1 for j in range(3)] for code in range(8)], dtype=torch.float)
    energies = -(v @ rbm.visible_bias)[:, None] - (hiddens @ rbm.hidden_bias)[None] - v @ rbm.weight.t() @ hiddens.t()
    assert torch.allclose(rbm.free_energy(v), -torch.logsumexp(-energies, dim=1), atol=1e-5)


def finite_difference_jacobian_norms(encode, inputs: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    norms = []
    for x in inputs.double():
        columns = []
        for index in range(x.numel()):
            step = torch.zeros_like(x).flatten()
            step[index] = eps
            step = step.view_as(x)
            columns.append((encode((x + step)[None]) - encode((x - step)[None]))[0] / (2 * eps))
        norms.append(torch.stack(columns).square().sum())
    return torch.stack(norms)


@pytest.mark.parametrize("hidden_sizes, activation", [((4,), "sigmoid"), ((5, 3), "tanh")])  # exact, autograd
def test_contractive_penalty_equals_a_finite_difference_jacobian_norm(hidden_sizes, activation):
    torch.manual_seed(0)
    net = MLPAutoencoder((1, 2, 3), hidden_sizes, activation).double()
    inputs = torch.rand(3, 1, 2, 3, dtype=torch.double)
    penalty = ContractivePenalty(weight=0.5)
    norms = penalty.jacobian_norms(net, inputs, net.encode(inputs))
    assert torch.allclose(norms, finite_difference_jacobian_norms(net.encode, inputs), rtol=1e-6)
    assert penalty(net, inputs, net.encode(inputs)).item() == pytest.approx(0.5 * norms.mean().item())


def test_sparsity_penalty_is_the_kl_of_the_mean_activations():
    codes = torch.tensor([[0.1, 0.5], [0.3, 0.5]])  # mean activations 0.2 and 0.5
    rho = 0.2
    kl = [rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q)) for q in (0.2, 0.5)]
    assert kl[0] == 0
    assert SparsityPenalty(rho, weight=3.0)(None, None, codes).item() == pytest.approx(3.0 * sum(kl))
    # Hands-On's `(1-p/1-p_hat)` is a different number: 1 - p - p_hat.
    assert (1 - rho / 1 - 0.5) != (1 - rho) / (1 - 0.5)
    with pytest.raises(DlbookError, match="activation=sigmoid"):
        SparsityPenalty(0.05).check(MLPAutoencoder((4,), (2,), "relu"))


def test_sparse_autoencoders_mean_activation_moves_toward_rho():
    images = torch.tensor(load_digits().images, dtype=torch.float).unsqueeze(1) / 16
    rho, distances = 0.05, {}
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        net, penalty = MLPAutoencoder((1, 8, 8), (64,), "sigmoid"), SparsityPenalty(rho, weight)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
        for batch in images[:1024].split(64) * 5:
            code = net.encode(batch)
            loss = (torch.sigmoid(net.decode(code)) - batch).square().mean() + penalty(net, batch, code)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            distances[weight] = (net.encode(images[1024:]).mean(0) - rho).abs().mean().item()
    assert distances[0.5] < 0.5 * distances[0.0]


def test_kl_is_the_divergence_from_the_standard_normal():
    torch.manual_seed(0)
    mean, log_var = torch.randn(4, 3), torch.randn(4, 3)
    posterior, prior = torch.distributions.Normal(mean, (0.5 * log_var).exp()), torch.distributions.Normal(0.0, 1.0)
    assert torch.allclose(gaussian_kl(mean, log_var), torch.distributions.kl_divergence(posterior, prior).sum(1))
    assert gaussian_kl(torch.zeros(1, 2), torch.zeros(1, 2)).item() == 0


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_decoders_give_back_the_input_shape(shape):
    images = torch.rand(2, *shape)
    for upsample in ("resize", "transposed"):
        assert ConvAutoencoder(shape, (8, 4, 4), upsample)(images).shape == images.shape
    assert VAE(shape, latent_dim=3, conv_channels=(8, 8, 8), num_classes=10)(images, torch.tensor([1, 2])).shape == \
        images.shape
    assert VAE(shape, latent_dim=3, hidden_sizes=(16,))(images).shape == images.shape
    tied, untied = MLPAutoencoder(shape, (16, 4), tied=True), MLPAutoencoder(shape, (16, 4))
    assert tied(images).shape == images.shape
    count = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert count == 16 * math.prod(shape) + 4 * 16  # tied: no decoder weights of its own


def test_corruptions_draw_what_they_say():
    images = torch.full((64, 1, 16, 16), 0.5)
    salted = corruption("salt_and_pepper", fraction=0.2)(images, torch.Generator().manual_seed(0))
    changed = salted != 0.5
    assert 0.17 < changed.float().mean() < 0.23 and set(salted[changed].unique().tolist()) == {0.0, 1.0}
    noisy = corruption("gaussian", std=0.1)(images, torch.Generator().manual_seed(0))
    assert 0.09 < (noisy - images).std() < 0.11 and noisy.min() >= 0 and noisy.max() <= 1
    again = corruption("gaussian", std=0.1)(images, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)
    with pytest.raises(DlbookError, match="salt_and_pepper"):
        corruption("speckle")


def test_dbn_fine_tunes_from_the_pretraining_in_a_checkpoint(run_config, tmp_path):
    # Pretraining only: one CD epoch of the RBM.
    _, pretrained = train(run_config(["model=dbn", *DIGITS, "model.net.cd_lr=0.1"], run_name="pretrain"))
    weights = pretrained["model"].net.rbms[0].weight.detach().clone()
    assert not torch.allclose(weights, torch.zeros_like(weights), atol=0.05)  # CD moved them from N(0, 0.01)
    # Fine-tuning at a zero learning rate, pretraining off: the RBM's weights are the checkpoint's.
    checkpoint = tmp_path / "pretrain" / "checkpoints" / "last.ckpt"
    _, tuned = train(run_config(["model=dbn", *DIGITS, "model.pretrain_epochs=0", "optimizer.lr=0",
                                 f"ckpt_path={checkpoint}", "ckpt_restore=weights"], run_name="tune"))
    assert torch.equal(tuned["model"].net.rbms[0].weight, weights)
    # With pretraining on, the same start moves them: the run above did not pretrain again.
    _, again = train(run_config(["model=dbn", *DIGITS, "optimizer.lr=0", f"ckpt_path={checkpoint}",
                                 "ckpt_restore=weights"], run_name="again"))
    assert not torch.equal(again["model"].net.rbms[0].weight, weights)


def test_sample_script_draws_from_a_vae_and_an_rbm_and_reconstructs_with_an_autoencoder(run_config, tmp_path):
    from PIL import Image

    from scripts.sample import sample

    folder = tmp_path / "digits"
    folder.mkdir()
    for index, image in enumerate(load_digits().images[:3]):
        Image.fromarray((image * 255 / 16).astype("uint8")).save(folder / f"{index}.png")
    for model, extra in (("vae", ["model.net.hidden_sizes=[16]"]), ("rbm", ["model.sample_steps=5"]),
                         ("denoising_ae", ["model.net.channels=[8,4]"])):
        train(run_config([f"model={model}", *DIGITS, "callbacks.figures=null", *extra], run_name=model))
        source = [f"input={folder}"] if model == "denoising_ae" else []
        path = sample(compose_run([f"paths.log_dir={tmp_path / 'outputs'}", f"ckpt_path={tmp_path / model}", "n=16",
                                   *source], tmp_path / f"sample_{model}", "sample"))
        # 4 x 4 samples, or 3 inputs over their noisy versions and their reconstructions; 8 px, 2 px apart
        cells = 3 if source else 4
        assert Image.open(path).size == (cells * 10 + 2, cells * 10 + 2), model


def test_embed_script_gives_an_autoencoders_codes(run_config, tmp_path):
    from scripts.embed import embed

    train(run_config(["model=ae", *DIGITS, "callbacks.figures=null"]))
    # no kind=: an autoencoder's vectors are its codes (the default was kind=words, which it refused)
    settings = [f"paths.log_dir={tmp_path / 'outputs'}", f"ckpt_path={tmp_path / 'run'}", "limit=40", "export=true",
                "projection=pca"]
    embed(compose_run(settings, tmp_path / "codes", "embed"))
    vectors = (tmp_path / "codes" / "vectors.tsv").read_text().splitlines()
    assert len(vectors) == 40 and len(vectors[0].split("\t")) == 32  # model=ae's 32-unit code
    assert (tmp_path / "codes" / "projection.png").is_file()


def test_mnist_resized_on_the_device(run_config, tmp_path):
    from dlbook.assembly import build_datamodule
    from tests.datasets import write_mnist

    write_mnist(tmp_path / "data")
    cfg = run_config(["data=mnist", "data.download=false", "data.image_size=32", "data.normalization=unit"])
    datamodule = build_datamodule(cfg, {"data": "mnist"})
    datamodule.setup("fit")
    images, _ = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    assert datamodule.spec.input_shape == (1, 32, 32) and images.shape[1:] == (1, 32, 32)
    assert 0 <= images.min() and images.max() <= 1 and images.std() > 0.1


@pytest.mark.parametrize("overrides, message", [
    # torch builds layers of width 0: these failed in a figure after training, or trained nothing silently
    (["model=ae", "model.net.hidden_sizes=[0]"], "model.net.hidden_sizes[0]=0 must be a positive integer."),
    (["model=conv_ae", "model.net.channels=[8,0]"], "model.net.channels[1]=0 must be a positive integer."),
    (["model=vae", "model.net.latent_dim=0"], "model.net.latent_dim=0 must be a positive integer."),
    (["model=rbm", "model.net.num_hidden=0"], "model.net.num_hidden=0 must be a positive integer."),
    (["model=dbn", "model.net.hidden_sizes=[0]"], "model.net.hidden_sizes[0]=0 must be a positive integer."),
    # weights of the wrong sign reward what they should penalise
    (["model=sparse_ae", "model.penalty.weight=-1"], "model.penalty.weight=-1 must be a finite number from 0 up"),
    (["model=contractive_ae", "model.penalty.weight=-1"], "model.penalty.weight=-1 must be a finite number from 0"),
    (["model=vae", "model.beta=-1"], "model.beta=-1 must be a finite number from 0 up (the KL term's weight"),
    (["model=rbm", "model.lr=-1"], "model.lr=-1 must be a finite number from 0 up."),
    (["model=dbn", "model.net.cd_lr=-1"], "model.net.cd_lr=-1 must be a finite number from 0 up."),
    # a target activation no sigmoid unit reaches: the KL term is not a number
    (["model=sparse_ae", "model.penalty.rho=1"],
     "model.penalty.rho=1 must be a finite number above 0 and below 1: the code units' target mean activation"),
    # a threshold no pixel passes trains on blank images
    (["model=rbm", "model.binarize=2"],
     "model.binarize=2 must be a finite number from 0 to below 1: a pixel threshold (null feeds"),
    (["model=dbn", "model.net.binarize=1"], "model.net.binarize=1 must be a finite number from 0 to below 1"),
    # counts taken as 0 or failing deep in the run
    (["model=deep_ae", "model.layerwise_epochs=-1"], "model.layerwise_epochs=-1 must be a non-negative integer"),
    (["model=vae", "model.manifold_size=0"], "model.manifold_size=0 must be a positive integer"),
    (["model=rbm", "model.sample_steps=0"], "model.sample_steps=0 must be a positive integer"),
    (["model=rbm", "model.persistent=true", "model.chains=0"], "model.chains=0 must be a positive integer"),
    (["model=rbm", "model.k=abc"], "model.k=abc must be a positive integer"),
    (["model=dbn", "model.net.cd_k=0"], "model.net.cd_k=0 must be a positive integer"),
    (["model=dbn", "model.pretrain_epochs=abc"], "model.pretrain_epochs=abc must be a non-negative integer"),
    (["model=gan", "model.latent_dim=0"], "model.latent_dim=0 must be a positive integer"),
])
def test_a_setting_that_would_train_wrongly_or_fail_late_is_refused_before_training(tmp_path, overrides, message):
    config = compose_run([*DIGITS, "logger=none", f"paths.root_dir={tmp_path}", *overrides], tmp_path / "run")
    with pytest.raises(DlbookError) as refused:
        train(config)
    assert message in str(refused.value)
    assert not (tmp_path / "run" / "checkpoints").exists()
