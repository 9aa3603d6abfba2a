"""What a datamodule yields, one spec class per kind of data. Models are sized from a spec, never from numbers
repeated in their configs, and a task names the spec types it trains on (Task.accepts)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DataSpec:
    """The base of every kind; `kind` names it in messages."""

    kind = "data"

    def describe(self) -> str:
        return self.kind


@dataclass(frozen=True)
class ImageSpec(DataSpec):
    """Labelled images: (channels, height, width) and the classes."""

    input_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...] = ()
    kind = "labelled_images"

    def describe(self) -> str:
        c, h, w = self.input_shape
        return f"{self.kind}, {c}x{h}x{w}, {self.num_classes} classes"


@dataclass(frozen=True)
class UnpairedImageSpec(DataSpec):
    """Two unlabelled image domains A and B of one shape, not paired image to image (CycleGAN)."""

    input_shape: tuple[int, int, int]
    kind = "unpaired_images"

    def describe(self) -> str:
        c, h, w = self.input_shape
        return f"{self.kind}, {c}x{h}x{w} in each domain"


@dataclass(frozen=True)
class TabularSpec(DataSpec):
    """Rows of numeric features with a target: `num_targets` values to regress, or one of `num_classes`."""

    num_features: int
    num_targets: int = 1
    num_classes: int = 0  # 0: regression
    feature_names: tuple[str, ...] = ()
    target_names: tuple[str, ...] = ()
    # Regression targets arrive standardised; a task reports its errors in the original units with these.
    target_mean: tuple[float, ...] = ()
    target_std: tuple[float, ...] = ()
    kind = "tabular"

    @property
    def is_regression(self) -> bool:
        return self.num_classes == 0

    @property
    def input_shape(self) -> tuple[int]:
        """A row's shape, so nets sized by input_shape (an MLP) take tables as they take images."""
        return (self.num_features,)

    def describe(self) -> str:
        target = (f"{self.num_targets} regression target{'s' if self.num_targets > 1 else ''}"
                  if self.is_regression else f"{self.num_classes} classes")
        return f"{self.kind}, {self.num_features} features, {target}"


@dataclass(frozen=True)
class VectorSpec(DataSpec):
    """Unlabelled points of `dim` numbers, the data a generative model learns to draw (the DL Workshop's (x, sin x)
    pairs): no target to predict and no classes, so a regressor or classifier refuses them by their type."""

    dim: int
    feature_names: tuple[str, ...] = ()
    kind = "vectors"

    @property
    def input_shape(self) -> tuple[int]:
        return (self.dim,)

    def describe(self) -> str:
        names = f" ({', '.join(self.feature_names)})" if self.feature_names else ""
        return f"{self.kind}, {self.dim} values{names}"


@dataclass(frozen=True)
class StepsSpec(DataSpec):
    """No data: the task draws or optimises on its own (a sampler, a minimiser), one step per training batch."""

    steps_per_epoch: int
    kind = "steps"

    def describe(self) -> str:
        return f"{self.kind}, {self.steps_per_epoch} per epoch"


@dataclass(frozen=True)
class TokenSpec(DataSpec):
    """Sequences of token ids from a vocabulary; `pad_index` fills sequences shorter than `max_length`.
    `vocabulary` holds the tokens by id where the data has one to decode with (a language model's samples)."""

    vocab_size: int
    max_length: int
    pad_index: int | None = None
    num_classes: int = 0  # 0: language modelling (the targets are the next tokens)
    vocabulary: tuple[str, ...] = ()
    separator: str = ""  # what joins decoded tokens: "" for characters, " " for words
    class_names: tuple[str, ...] = ()
    kind = "token_sequences"

    def describe(self) -> str:
        target = f", {self.num_classes} classes" if self.num_classes else ", next-token targets"
        padding = f", pad id {self.pad_index}" if self.pad_index is not None else ""
        return f"{self.kind}, vocabulary {self.vocab_size}, length {self.max_length}{padding}{target}"


@dataclass(frozen=True)
class CorpusSpec(DataSpec):
    """The words of a text corpus, for learning a vector per word (and per document): the vocabulary by id, most
    frequent first, and the number of documents the corpus is cut into."""

    vocab_size: int
    vocabulary: tuple[str, ...] = ()
    num_documents: int = 0
    counts: tuple[int, ...] = ()  # each word's count in the training text, by id (a noise distribution's source)
    document_labels: tuple[str, ...] = ()  # a short label per document (its first words), by document id
    kind = "word_corpus"

    def describe(self) -> str:
        documents = f", {self.num_documents} documents" if self.num_documents else ""
        return f"{self.kind}, vocabulary {self.vocab_size}{documents}"


@dataclass(frozen=True)
class PairSpec(DataSpec):
    """Pairs of token sequences, a source and its target (a sentence and its translation, a sequence and its
    reversal): each side's vocabulary and longest sequence, and the special ids both sides share. Target
    sequences start with `start_index` and end with `end_index`; `pad_index` fills both sides' batches."""

    source_vocab_size: int
    target_vocab_size: int
    max_source_length: int
    max_target_length: int
    pad_index: int = 0
    start_index: int = 1
    end_index: int = 2
    source_vocabulary: tuple[str, ...] = ()
    target_vocabulary: tuple[str, ...] = ()
    separator: str = " "  # what joins decoded tokens
    kind = "sequence_pairs"

    def describe(self) -> str:
        return (f"{self.kind}, vocabularies {self.source_vocab_size} -> {self.target_vocab_size}, lengths up to "
                f"{self.max_source_length} -> {self.max_target_length}")


@dataclass(frozen=True)
class TimeSeriesSpec(DataSpec):
    """Windows of `window` steps of `num_series` series, predicting the next `horizon` steps of the first; with
    forecast=False, `horizon` values of the whole sequence instead (the number of ones in it)."""

    window: int
    horizon: int
    num_series: int = 1
    series_names: tuple[str, ...] = ()
    target_names: tuple[str, ...] = ()
    # Values arrive scaled; a task reports its errors in the original units with the targets' offset and scale.
    target_mean: tuple[float, ...] = ()
    target_std: tuple[float, ...] = ()
    forecast: bool = True
    newest_first: bool = False  # each window's steps in reverse order, its last value first
    kind = "time_series"
    is_regression = True

    @property
    def num_targets(self) -> int:
        return self.horizon

    @property
    def input_shape(self) -> tuple[int, int]:
        """A window's shape, (steps, series), as sequence nets read it."""
        return (self.window, self.num_series)

    def describe(self) -> str:
        if not self.forecast:
            return (f"{self.kind}, sequences of {self.window} steps -> {self.horizon} "
                    f"{'value' if self.horizon == 1 else 'values'} of the whole sequence")
        return f"{self.kind}, {self.num_series} series, windows of {self.window} -> next {self.horizon}"


@dataclass(frozen=True)
class GraphSpec(DataSpec):
    """A graph with node features; node classes for node classification."""

    num_nodes: int
    num_features: int
    num_classes: int
    kind = "graph"

    def describe(self) -> str:
        return f"{self.kind}, {self.num_nodes} nodes, {self.num_features} features, {self.num_classes} classes"


@dataclass(frozen=True)
class EnvironmentSpec(DataSpec):
    """A reinforcement-learning environment: observation shape and a discrete action count (0: continuous)."""

    observation_shape: tuple[int, ...]
    num_actions: int
    name: str = ""
    kind = "environment"

    def describe(self) -> str:
        actions = f"{self.num_actions} actions" if self.num_actions else "continuous actions"
        return f"{self.kind} {self.name}, observations {'x'.join(map(str, self.observation_shape))}, {actions}"


@dataclass(frozen=True)
class EpisodeSpec(DataSpec):
    """Few-shot episodes: `ways` classes with `shots` labelled and `queries` query images each."""

    input_shape: tuple[int, int, int]
    ways: int
    shots: int
    queries: int
    kind = "episodes"

    def describe(self) -> str:
        c, h, w = self.input_shape
        return f"{self.kind}, {self.ways}-way {self.shots}-shot, {self.queries} queries, {c}x{h}x{w}"


@dataclass(frozen=True)
class DenseImageSpec(DataSpec):
    """Images with boxes or masks: `targets` is "boxes" (detection) or "masks" (segmentation)."""

    input_shape: tuple[int, int, int]
    num_classes: int
    targets: str
    kind = "annotated_images"

    def describe(self) -> str:
        c, h, w = self.input_shape
        return f"{self.kind} with {self.targets}, {c}x{h}x{w}, {self.num_classes} classes"
