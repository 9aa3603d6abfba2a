"""dlbook: Hydra + Lightning + W&B training framework and a model zoo from five deep-learning books."""

__version__ = "0.1.0"
