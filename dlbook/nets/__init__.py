"""Plain nn.Module architectures, one per file. Each takes the datamodule's `input_shape` and `num_classes`."""
