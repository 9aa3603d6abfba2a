"""Nets on rows of numeric features: `num_outputs` values from `num_features` inputs."""
