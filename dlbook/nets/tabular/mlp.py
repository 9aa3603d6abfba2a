"""The classifiers' multilayer perceptron as a regressor: `num_outputs` values, after an output activation."""

from dlbook.nets.classification.mlp import MLP, activation_layer


class MLPRegressor(MLP):
    """MLP on rows of `num_features`, its last layer followed by `output_activation`: identity for targets of any
    range, sigmoid for targets min-max scaled to [0, 1] (the TF 1.x Cookbook's Boston regressor)."""

    def __init__(self, num_features: int, num_outputs: int, hidden_sizes: tuple[int, ...] = (),
                 activation: str = "relu", output_activation: str = "identity", dropout: float = 0.0,
                 init: str = "default"):
        super().__init__((num_features,), num_outputs, hidden_sizes, activation, dropout, init)
        output = activation_layer(output_activation, "model.net.output_activation")
        self.layers.append(output())  # no parameters: the state-dict keys stay the MLP's
