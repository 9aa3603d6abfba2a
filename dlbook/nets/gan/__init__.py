"""GAN nets: generators drawing images of `input_shape`, discriminators scoring them; label-conditioned when
`num_classes` > 0."""
