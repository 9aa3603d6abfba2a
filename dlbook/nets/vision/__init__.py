"""Vision classifiers: the books' plain CNNs and the classic ImageNet architectures, logits of `num_classes` from
images of `input_shape`."""
