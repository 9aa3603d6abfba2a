"""Samplers trained through train.py like any task, without an optimizer: Monte Carlo estimation of pi, and
Markov chains (random-walk Metropolis, Gibbs) on a target distribution (Pro Deep Learning with TensorFlow 2,
ch. 5). Each training batch draws a chunk of samples from torch's global random stream, which checkpoints keep;
the chains' states, counts and running sums are buffers, so a resumed run draws what the interrupted one would
have."""

from collections.abc import Callable

import torch
from matplotlib.figure import Figure
from torch import nn

from dlbook import plots
from dlbook.data.spec import DataSpec, StepsSpec
from dlbook.errors import DlbookError, check_count
from dlbook.tasks.base import Task


class SamplerTask(Task):
    """What the samplers share: they take the steps data and no optimizer, and draw in float64."""

    accepts = (StepsSpec,)
    one_process_only = "draws its chains without parameters to train, which DDP needs"

    def __init__(self, data_spec: DataSpec, optimizer: Callable | None, scheduler: dict | None = None,
                 draws_per_step: int = 1000, trace_length: int = 5000):
        super().__init__(data_spec, optimizer, scheduler)
        if optimizer is not None:
            raise DlbookError(f"{type(self).__name__} draws samples rather than following a gradient; this run sets "
                              f"an optimizer. Use optimizer=none.")
        check_count("model.draws_per_step", draws_per_step)
        check_count("model.trace_length", trace_length, least=0)
        self.automatic_optimization = False
        self.draws_per_step = draws_per_step
        self.trace_length = trace_length

    def training_step(self, batch, batch_idx):
        self.draw(self.draws_per_step)
        # Lightning counts a step (global_step, by which checkpoints are kept) when an optimizer steps; with
        # optimizer=none its placeholder optimizer steps and changes nothing.
        self.optimizers().step()

    def draw(self, count: int) -> None:
        raise NotImplementedError


class MonteCarloPiTask(SamplerTask):
    """Points uniform in the unit square; 4 x the fraction inside the quarter circle x^2 + y^2 < 1 estimates pi.
    Each step draws `draws_per_step` points; each epoch logs `train/pi` over all points so far, its standard
    error `train/pi_stderr` (4 sqrt(f (1 - f) / n)) and `train/samples`. The figure shows the first
    `trace_length` points, inside and outside."""

    summary_metrics = (("train/pi", "Pi estimate"),)

    def __init__(self, data_spec: DataSpec, optimizer: Callable | None, scheduler: dict | None = None,
                 draws_per_step: int = 1000, trace_length: int = 5000):
        super().__init__(data_spec, optimizer, scheduler, draws_per_step, trace_length)
        self.register_buffer("inside", torch.zeros((), dtype=torch.long))
        self.register_buffer("samples", torch.zeros((), dtype=torch.long))
        self.register_buffer("trace", torch.zeros(trace_length, 2, dtype=torch.float64))

    def draw(self, count: int) -> None:
        points = torch.rand(count, 2, dtype=torch.float64, device=self.device)
        kept = min(max(self.trace_length - int(self.samples), 0), count)
        self.trace[int(self.samples):int(self.samples) + kept] = points[:kept]
        self.inside += (points.square().sum(dim=1) < 1).sum()
        self.samples += count

    def estimate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """pi's estimate and its standard error."""
        fraction = self.inside.double() / self.samples
        return 4 * fraction, 4 * (fraction * (1 - fraction) / self.samples).sqrt()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        pi, stderr = self.estimate()
        self.log_dict({"train/pi": pi, "train/pi_stderr": stderr, "train/samples": self.samples.double()})

    def figures(self, stage: str) -> dict:
        if stage != "fit":
            return {}
        points = self.trace[:min(self.trace_length, int(self.samples))].cpu()
        inside = (points.square().sum(dim=1) < 1).long()
        figure, axes = plots.new_figure(4.5, 4.5)
        plots.scatter(axes, points, inside, ("outside", "inside"))
        angle = torch.linspace(0, torch.pi / 2, 200)
        axes.plot(angle.cos(), angle.sin(), color="black", linewidth=1)
        axes.set_aspect("equal")
        pi, stderr = self.estimate()
        axes.set_title(f"Monte Carlo pi: {pi.item():.4f} ± {stderr.item():.4f} ({int(self.samples):,} points)")
        return {"pi_points": figure}


class MarkovChainTask(SamplerTask):
    """`chains` chains on `target` (a module with `dims` and `log_density`, e.g. dlbook.nets.basics.targets.Gaussian),
    all starting at `start` (the target's mean by default, as in the book). Each step advances every chain
    `draws_per_step` transitions; the states after the first `burn_in` transitions of each chain enter the
    running mean and covariance, which each epoch logs as `train/mean_<i>` and `train/cov_<i><j>` (i <= j),
    with `train/cov_max_error`, the largest difference from the target's covariance. The figures: the trace of
    chain 0 over its first `trace_length` states, and those states over the target's density contours."""

    summary_metrics = (("train/cov_max_error", "Largest covariance error"),)

    def __init__(self, target: Callable[[], nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None, chains: int = 1, draws_per_step: int = 1000, burn_in: int = 0,
                 start: list[float] | None = None, trace_length: int = 5000):
        super().__init__(data_spec, optimizer, scheduler, draws_per_step, trace_length)
        self.target = target()
        dims = self.target.dims
        check_count("model.chains", chains)
        check_count("model.burn_in", burn_in, least=0)
        if start is not None and len(start) != dims:
            raise DlbookError(f"model.start={list(start)} has {len(start)} values; the target has {dims} dimensions.")
        self.chains, self.burn_in = chains, burn_in
        initial = self.target.mean if start is None else torch.tensor(start, dtype=torch.float64)
        self.register_buffer("state", initial.expand(chains, dims).clone())
        self.register_buffer("transitions", torch.zeros((), dtype=torch.long))  # per chain, burn-in included
        self.register_buffer("trace", torch.zeros(trace_length, dims, dtype=torch.float64))
        # Running sums of the kept states: their count, sum and sum of outer products.
        self.register_buffer("kept", torch.zeros((), dtype=torch.long))
        self.register_buffer("total", torch.zeros(dims, dtype=torch.float64))
        self.register_buffer("outer", torch.zeros(dims, dims, dtype=torch.float64))
        self.register_buffer("moved", torch.zeros((), dtype=torch.long))  # kept transitions that changed a state

    def transition(self, state: torch.Tensor) -> torch.Tensor:
        """The chains' next states (chains, dims) from these."""
        raise NotImplementedError

    def draw(self, count: int) -> None:
        states = torch.empty(count + 1, *self.state.shape, dtype=self.state.dtype, device=self.device)
        states[0] = state = self.state
        for t in range(1, count + 1):
            states[t] = state = self.transition(state)
        self.state = state
        done = int(self.transitions)
        recorded = min(max(self.trace_length - done, 0), count)
        self.trace[done:done + recorded] = states[1:recorded + 1, 0]
        first = min(max(self.burn_in - done, 0), count) + 1  # states[first:] are kept
        kept = states[first:].flatten(0, 1)
        self.kept += len(kept)
        self.total += kept.sum(dim=0)
        self.outer += kept.T @ kept
        self.moved += (states[first:] != states[first - 1:-1]).any(dim=-1).sum()
        self.transitions += count

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The kept states' mean and sample covariance (divided by n - 1, as numpy.cov)."""
        count = self.kept.double()
        mean = self.total / count
        return mean, (self.outer - count * torch.outer(mean, mean)) / (count - 1)

    def epoch_metrics(self) -> dict[str, torch.Tensor]:
        mean, covariance = self.statistics()
        dims = self.target.dims
        metrics = {f"train/mean_{i}": mean[i] for i in range(dims)}
        metrics.update({f"train/cov_{i}{j}": covariance[i, j] for i in range(dims) for j in range(i, dims)})
        metrics["train/cov_max_error"] = (covariance - self.target.covariance).abs().max()
        return metrics

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if self.kept < 2:
            raise DlbookError(f"model.burn_in={self.burn_in} discards every state drawn so far "
                              f"({int(self.transitions)} per chain): train longer or burn in less.")
        self.log_dict(self.epoch_metrics())

    def figures(self, stage: str) -> dict:
        if stage != "fit":
            return {}
        states = self.trace[:min(self.trace_length, int(self.transitions))].cpu()
        name = type(self).__name__.removesuffix("Task")
        trace = Figure(figsize=(7.0, 1.6 * states.shape[1] + 0.8))
        for i, axes in enumerate(trace.subplots(states.shape[1], 1, sharex=True, squeeze=False)[:, 0]):
            axes.plot(states[:, i], linewidth=0.5)
            axes.set_ylabel(f"x{i}")
        axes.set_xlabel("transition (chain 0)")
        trace.suptitle(f"{name} trace")
        figures = {"trace": trace}
        if states.shape[1] == 2:
            scatter, axes = plots.new_figure(5.0, 5.0)
            axes.scatter(states[:, 0], states[:, 1], s=2, alpha=0.3, color="black")
            self.density_contours(axes, states)
            axes.set_xlabel("x0")
            axes.set_ylabel("x1")
            axes.set_title(f"{name}: {len(states):,} states of chain 0 over the target")
            figures["samples"] = scatter
        return figures

    def density_contours(self, axes, states: torch.Tensor) -> None:
        """The target's log density at 1, 2 and 3 'standard deviations' (-x^2/2 for x = 3, 2, 1)."""
        low, high = states.min(dim=0).values - 0.5, states.max(dim=0).values + 0.5
        xs, ys = (torch.linspace(low[i], high[i], 200, dtype=torch.float64) for i in range(2))
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        with torch.no_grad():
            grid = torch.stack([grid_x, grid_y], dim=-1).to(self.device)
            density = (self.target.log_density(grid) - self.target.log_density(self.target.mean)).cpu()
        axes.contour(grid_x, grid_y, density, levels=[-4.5, -2.0, -0.5], colors="C1", linewidths=1,
                     linestyles="solid")


class MetropolisTask(MarkovChainTask):
    """Random-walk Metropolis: propose y = x + z, z ~ N(0, `proposal_covariance`), and accept it with probability
    min(1, p(y) / p(x)); a rejected proposal repeats the current state, which counts as a sample again. Also logs
    `train/acceptance_rate`, the fraction of proposals accepted over the kept transitions."""

    summary_metrics = (("train/acceptance_rate", "Acceptance rate"),)

    def __init__(self, target: Callable[[], nn.Module], data_spec: DataSpec, optimizer: Callable | None,
                 scheduler: dict | None = None, proposal_covariance: list[list[float]] | None = None, **options):
        super().__init__(target, data_spec, optimizer, scheduler, **options)
        dims = self.target.dims
        covariance = (torch.eye(dims, dtype=torch.float64) if proposal_covariance is None
                      else torch.tensor(proposal_covariance, dtype=torch.float64))
        if covariance.shape != (dims, dims):
            raise DlbookError(f"model.proposal_covariance={covariance.tolist()} must be {dims}x{dims}, as the "
                              f"target.")
        try:
            scale = torch.linalg.cholesky(covariance)
        except torch.linalg.LinAlgError:
            raise DlbookError(f"model.proposal_covariance={covariance.tolist()} is not positive definite.") from None
        self.register_buffer("proposal_scale", scale, persistent=False)

    def transition(self, state: torch.Tensor) -> torch.Tensor:
        proposal = state + torch.randn_like(state) @ self.proposal_scale.T
        log_ratio = self.target.log_density(proposal) - self.target.log_density(state)
        accept = torch.rand_like(log_ratio).log() < log_ratio
        return torch.where(accept.unsqueeze(-1), proposal, state)

    def epoch_metrics(self) -> dict[str, torch.Tensor]:
        # A proposal equal to the state it came from has probability zero: the moves are the acceptances.
        return {**super().epoch_metrics(), "train/acceptance_rate": self.moved.double() / self.kept}


class GibbsTask(MarkovChainTask):
    """Gibbs sampling: each transition draws every coordinate in turn from its conditional given the others'
    current values (`target.conditional`), so every draw is accepted."""

    def transition(self, state: torch.Tensor) -> torch.Tensor:
        state = state.clone()
        for j in range(state.shape[1]):
            mean, std = self.target.conditional(state, j)
            state[:, j] = mean + std * torch.randn_like(mean)
        return state
