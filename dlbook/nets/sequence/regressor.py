"""What the sequence regressors share: they read windows whole, (batch, steps, series), and are sized by the shape
of one, where a table's nets read each window flattened into one row."""

from torch import nn

from dlbook.errors import IncompatibleDataError


class SequenceRegressor(nn.Module):
    """Base of the nets that regress `num_outputs` values from sequences of input_shape = (steps, series); the
    regression task builds them with the data's input_shape and gives them windows unflattened."""

    def __init__(self, input_shape: tuple[int, int], num_outputs: int):
        super().__init__()
        if len(input_shape) != 2:
            raise IncompatibleDataError(f"it reads sequences of (steps, series); the data gives samples of shape "
                                        f"{tuple(input_shape)}")
        self.steps, self.num_series = input_shape
        self.num_outputs = num_outputs
