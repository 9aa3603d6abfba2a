"""Samplers (Monte Carlo pi, Metropolis, Gibbs) against what they estimate, and the gradient check against the
book's number, a right gradient and a wrong one. Each model also trains in test_models.py and keeps the task
contract in test_contract.py."""

import math
from functools import partial

import pytest
import torch
from torch import nn

from dlbook.data.spec import StepsSpec
from dlbook.errors import DlbookError
from dlbook.nets.basics.objectives import Quadratic
from dlbook.nets.basics.targets import Gaussian
from dlbook.nets.classification.mlp import MLP
from dlbook.tasks.sampling import GibbsTask, MetropolisTask, MonteCarloPiTask
from dlbook.train import train
from dlbook.utils.gradcheck import check_gradients

RHO = 0.7
TARGET = partial(Gaussian, mean=[0.0, 0.0], covariance=[[1.0, RHO], [RHO, 1.0]])
STEPS = StepsSpec(steps_per_epoch=1)


def stationary_acceptance(target: Gaussian, proposal_covariance: torch.Tensor, n: int = 400_000) -> float:
    """E[min(1, p(y) / p(x))] for x drawn from the target itself and y = x + z: what a mixed chain accepts."""
    x = torch.randn(n, 2, dtype=torch.float64) @ torch.linalg.cholesky(target.covariance).T
    y = x + torch.randn(n, 2, dtype=torch.float64) @ torch.linalg.cholesky(proposal_covariance).T
    return (target.log_density(y) - target.log_density(x)).exp().clamp(max=1).mean().item()


@pytest.mark.parametrize("proposal", [[[0.2, 0.0], [0.0, 0.2]], [[1.0, 0.2], [0.2, 1.0]]])
def test_metropolis_accepts_as_it_should_and_samples_the_target(proposal):
    torch.manual_seed(0)
    task = MetropolisTask(TARGET, STEPS, None, proposal_covariance=proposal, chains=2000, burn_in=150)
    task.draw(400)
    metrics = task.epoch_metrics()
    # The book's docstring proposal accepts about 71%, its code's about 47%.
    expected = stationary_acceptance(task.target, torch.tensor(proposal, dtype=torch.float64))
    assert metrics["train/acceptance_rate"].item() == pytest.approx(expected, abs=0.005)
    mean, covariance = task.statistics()
    assert mean.abs().max() < 0.03
    assert torch.allclose(covariance, task.target.covariance, atol=0.04), covariance
    assert task.kept == 2000 * 250 and task.transitions == 400


def test_gibbs_samples_the_target_from_its_conditionals():
    target = TARGET()
    mean, std = target.conditional(torch.tensor([[2.0, -1.0]], dtype=torch.float64), 1)
    assert mean.item() == pytest.approx(RHO * 2.0) and std.item() == pytest.approx(math.sqrt(1 - RHO ** 2))
    torch.manual_seed(0)
    task = GibbsTask(TARGET, STEPS, None, chains=2000, burn_in=10)
    task.draw(100)
    _, covariance = task.statistics()
    assert torch.allclose(covariance, target.covariance, atol=0.02), covariance


def test_pi_is_within_four_standard_errors():
    torch.manual_seed(0)
    task = MonteCarloPiTask(STEPS, None, trace_length=10)
    for _ in range(4):
        task.draw(50_000)
    pi, stderr = task.estimate()
    assert stderr.item() == pytest.approx(4 * math.sqrt(math.pi / 4 * (1 - math.pi / 4) / 200_000), rel=0.01)
    assert abs(pi.item() - math.pi) < 4 * stderr.item()
    assert (task.trace.square().sum(dim=1) > 0).all()  # the first points are kept for the figure


def test_samplers_take_no_optimizer():
    with pytest.raises(DlbookError, match="optimizer=none"):
        MonteCarloPiTask(STEPS, optimizer=partial(torch.optim.SGD, lr=0.1))


def test_gradient_check_gives_the_books_number():
    square = Quadratic(init=3.0)  # f(x) = x^2 at x = 3
    check = check_gradients(square, square, eps=1e-4)
    assert check.analytic.item() == 6.0 and check.numeric.item() == 6.000000000012662
    assert check_gradients(square, square, eps=1e-2).numeric.item() == 5.999999999999872  # the listing's epsilon
    assert square.x.dtype == torch.float32 and square.x.item() == 3.0


def test_gradient_check_passes_a_small_mlp_in_float64_and_gives_it_back_unchanged():
    torch.manual_seed(0)
    net = nn.Sequential(MLP((5,), 3, hidden_sizes=(7,), activation="tanh"), nn.BatchNorm1d(3))
    inputs, labels = torch.randn(16, 5), torch.randint(0, 3, (16,))
    before = {name: tensor.clone() for name, tensor in net.state_dict().items()}
    check = check_gradients(net, lambda: nn.functional.cross_entropy(net(inputs.double()), labels))
    assert check.relative_error < 1e-7
    assert len(check.names) == check.total_elements == 5 * 7 + 7 + 7 * 3 + 3 + 2 * 3
    for name, tensor in net.state_dict().items():  # BatchNorm's running statistics included
        assert tensor.dtype == before[name].dtype and torch.equal(tensor, before[name]), name


class WrongSquare(torch.autograd.Function):
    """x^2 with the gradient 3x: a bug of the kind gradient checking exists for."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 2

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x * grad


class WronglyDifferentiatedQuadratic(Quadratic):
    def forward(self) -> torch.Tensor:
        return (self.a * WrongSquare.apply(self.x) + self.b * self.x + self.c).sum()


def test_gradient_check_catches_a_wrong_gradient():
    objective = WronglyDifferentiatedQuadratic(init=[1.0, -2.0, 0.5])
    check = check_gradients(objective, objective)
    assert check.relative_error > 0.1  # 3x against 2x: 1/5
    assert check.numeric.tolist() == pytest.approx([2.0, -4.0, 1.0])


def test_gradient_check_callback_stops_a_run_with_a_wrong_gradient(run_config):
    overrides = ["data=steps", "model=minimize", "data.steps_per_epoch=2", "trainer.max_epochs=1",
                 "model.objective._target_=tests.test_sampling.WronglyDifferentiatedQuadratic",
                 "model.objective.init=1.0",  # |x^2 - 10x + 25|' = 2x - 10 = -8 there, the wrong one -7
                 "+callbacks.gradient_check._target_=dlbook.callbacks.gradient_check.GradientCheckCallback",
                 "+callbacks.gradient_check.threshold=1e-7"]
    with pytest.raises(DlbookError, match=r"relative error 0\.0667 over 1 of 1 .* disagrees .*analytic -7, "
                                          r"numeric -8"):
        train(run_config(overrides))


def test_gradient_check_callback_checks_a_run_without_changing_it(run_config):
    """An MLP with dropout: every evaluation draws the same masks, and the run goes on as one without the check."""
    setup = ["model=mlp_small", "data=digits", "+model.net.dropout=0.5", "trainer.max_epochs=1",
             "++trainer.limit_train_batches=3", "++trainer.limit_val_batches=1", "test=false"]
    check = ["+callbacks.gradient_check._target_=dlbook.callbacks.gradient_check.GradientCheckCallback",
             "+callbacks.gradient_check.max_elements=100", "+callbacks.gradient_check.threshold=1e-7"]
    checked, objects = train(run_config([*setup, *check], run_name="checked"))
    plain, plain_objects = train(run_config(setup, run_name="plain"))
    assert checked["gradcheck/relative_error"] < 1e-7 and checked["gradcheck/elements"] == 100
    assert checked["train/loss"] == plain["train/loss"]
    for name, weights in plain_objects["model"].state_dict().items():
        assert torch.equal(objects["model"].state_dict()[name], weights), name
