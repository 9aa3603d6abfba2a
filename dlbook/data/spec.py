from dataclasses import dataclass


@dataclass(frozen=True)
class DataSpec:
    """What a datamodule yields; models are sized from it, never from numbers repeated in their configs."""

    kind: str  # "labelled_images" for now; other families add their own kinds
    input_shape: tuple[int, int, int]  # (channels, height, width) of one image
    num_classes: int
    class_names: tuple[str, ...] = ()

    def describe(self) -> str:
        c, h, w = self.input_shape
        return f"{self.kind}, {c}x{h}x{w}, {self.num_classes} classes"
