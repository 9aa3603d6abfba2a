"""Classifiers: logits of `num_classes` from images of `input_shape`."""
