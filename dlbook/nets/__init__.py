"""Plain nn.Module architectures, one per file, grouped by family (classification, gan); layers holds the blocks
several families share. Each net takes the datamodule's `input_shape` and `num_classes`."""
