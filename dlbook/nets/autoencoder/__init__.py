"""Autoencoders and energy-based models: nets that encode images to codes and decode them back (plain, stacked,
convolutional, variational), restricted Boltzmann machines and the deep belief net stacked from them. The encoders
and decoders return pixel logits; the tasks in dlbook/tasks/reconstruction.py and rbm.py say how each trains."""
