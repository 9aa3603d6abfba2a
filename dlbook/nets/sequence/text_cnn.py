"""A convolutional sentence classifier (Kim 2014; the TF 1.x Cookbook's IMDB ConvNet, ch. 5): embedding, parallel
1-D convolutions of several widths, ReLU, max over time, dropout and a linear output."""

import torch
from torch import nn

from dlbook.errors import DlbookError, IncompatibleDataError

POOLS = ("per_width", "across_widths")
INITS = ("torch", "tflearn")
TFLEARN_STD = 0.02  # TFLearn's truncated_normal default, cut at two standard deviations as TensorFlow's


class TextCNN(nn.Module):
    """Embedding(vocab_size, embed_dim) -> for each of `widths`, Conv1d(embed_dim, num_filters, width) without
    padding and ReLU -> max over time -> Dropout(dropout) -> Linear to num_classes logits.

    `pool`: per_width is Kim's, each width's feature maps max-pooled on their own and the results concatenated
    (num_filters * len(widths) features); across_widths is the Cookbook's listing as printed, the widths' maps
    joined along time (TFLearn's merge on axis 1) and max-pooled together, so filter k of every width shares one
    feature (num_filters features).

    `init`: torch keeps PyTorch's initialisation (embedding N(0, 1)); tflearn is TFLearn's layers' defaults
    (embedding and output weights truncated N(0, 0.02), filters uniform(±sqrt(3 / fan_in)), zero biases)."""

    def __init__(self, vocab_size: int, num_classes: int, max_length: int, pad_index: int | None = 0,
                 embed_dim: int = 128, num_filters: int = 128, widths: tuple[int, ...] = (3, 4, 5),
                 dropout: float = 0.5, pool: str = "per_width", init: str = "torch"):
        super().__init__()
        if pool not in POOLS:
            raise DlbookError(f"model.net.pool={pool!r} is not one of {', '.join(POOLS)}.")
        if init not in INITS:
            raise DlbookError(f"model.net.init={init!r} is not one of {', '.join(INITS)}.")
        if max_length < max(widths):
            raise IncompatibleDataError(f"its widest filter spans {max(widths)} tokens (model.net.widths="
                                        f"{list(widths)}); the data's sequences are {max_length} long")
        self.pool = pool
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_index)
        self.convolutions = nn.ModuleList(nn.Conv1d(embed_dim, num_filters, width) for width in widths)
        self.dropout = nn.Dropout(dropout)
        features = num_filters * len(widths) if pool == "per_width" else num_filters
        self.output = nn.Linear(features, num_classes)
        if init == "tflearn":
            self.tflearn_init()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int64 -> logits (B, num_classes)."""
        embedded = self.embedding(tokens).transpose(1, 2)  # (B, C, T): the channels a Conv1d takes
        maps = [torch.relu(convolution(embedded)) for convolution in self.convolutions]  # (B, F, T - width + 1)
        if self.pool == "per_width":
            features = torch.cat([feature_map.amax(dim=2) for feature_map in maps], dim=1)
        else:
            features = torch.cat(maps, dim=2).amax(dim=2)
        return self.output(self.dropout(features))

    def tflearn_init(self) -> None:
        for weight in (self.embedding.weight, self.output.weight):
            nn.init.trunc_normal_(weight, std=TFLEARN_STD, a=-2 * TFLEARN_STD, b=2 * TFLEARN_STD)
        if self.embedding.padding_idx is not None:
            with torch.no_grad():
                self.embedding.weight[self.embedding.padding_idx].zero_()
        for convolution in self.convolutions:
            fan_in = convolution.in_channels * convolution.kernel_size[0]
            nn.init.uniform_(convolution.weight, -(3 / fan_in) ** 0.5, (3 / fan_in) ** 0.5)
            nn.init.zeros_(convolution.bias)
        nn.init.zeros_(self.output.bias)
