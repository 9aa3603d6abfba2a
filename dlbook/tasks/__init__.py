"""LightningModules that say how to train a family of nets."""
