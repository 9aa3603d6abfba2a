"""Any folder-per-class image dataset: <root>/train/<class>/*.png|jpg and <root>/test/<class>/..."""

from pathlib import Path

import numpy as np
import torch

from dlbook.data.base import InMemoryImageDataModule
from dlbook.errors import DlbookError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def image_files(folder: Path) -> list[Path]:
    """The image files directly in folder, sorted; none if it is not a folder."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def read_image_inputs(path: Path, spec, datamodule) -> tuple[list[str], torch.Tensor]:
    """(file names, the images) of `input=path`, a file or a folder of them, decoded at the size and channels of
    the model's data spec and prepared as the datamodule prepared its training batches (scripts/predict.py,
    scripts/explain.py)."""
    files = image_files(path) if path.is_dir() else [path]
    if not files or files[0].suffix.lower() not in IMAGE_SUFFIXES:
        raise DlbookError(f"input={path} holds no image ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                          f"model trained on images of {spec.describe()}.")
    channels, size, _ = spec.input_shape
    return [str(file) for file in files], datamodule.preprocess(decode_images(files, size, channels), augment=False)


def decode_images(files: list[Path], size: int, channels: int) -> torch.Tensor:
    """uint8 (N, channels, size, size): each file decoded, converted to grey or RGB and resized once; a file
    that is not a whole image is refused, naming it."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    images = np.empty((len(files), size, size, channels), dtype=np.uint8)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as image:
                image = eight_bits(image, path).convert(mode).resize((size, size), Image.BILINEAR)
                images[i] = np.asarray(image).reshape(size, size, channels)
        except (OSError, Image.DecompressionBombError) as error:  # UnidentifiedImageError is an OSError
            raise DlbookError(f"{path} cannot be read as an image ({error}): give whole image files "
                              f"({', '.join(sorted(IMAGE_SUFFIXES))}), or remove this one.") from None
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


# The full scale of the modes Pillow decodes 16-bit files into (I for 16-bit PGM, and PNG in older Pillows) and
# float files into (F, whose usual scale is 0 to 1): its own conversion to 8 bits clips at 255 instead of scaling.
FULL_SCALE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def eight_bits(image, path: Path):
    """The image with 8 bits a channel: a 16-bit, 32-bit integer or float one scaled from its full scale to
    0..255; values outside it, whose scale is unknown, are refused."""
    from PIL import Image

    full = FULL_SCALE.get(image.mode)
    if full is None:
        return image
    values = np.asarray(image, dtype=np.float64)
    low, high = values.min(), values.max()
    if not 0 <= low <= high <= full:  # NaN fails too
        raise DlbookError(f"{path} is a mode {image.mode} image with values from {low:g} to {high:g}; integer "
                          f"images are read as 16-bit (0 to 65535), float ones as 0 to 1: convert it to one of "
                          f"those, or to 8 bits.")
    return Image.fromarray(np.rint(values * (255 / full)).astype(np.uint8))


class ImageFolderDataModule(InMemoryImageDataModule):
    """Images are decoded and resized to image_size x image_size once, at setup.

    Without a test/ folder, test_fraction of train/ is held out (seeded by split_seed) as the test set.
    Mean and std come from the training images and travel in the checkpoint.
    """

    name = "image_folder"

    def __init__(self, root: str, image_size: int = 32, channels: int = 3, test_fraction: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        if channels not in (1, 3):
            raise DlbookError(f"data.channels={channels} must be 1 (grey) or 3 (RGB).")
        self.root = Path(root).expanduser().resolve()
        self.image_size = image_size
        self.channels = channels
        self.test_fraction = test_fraction
        self.input_shape = (channels, image_size, image_size)
        self.mean = self.std = None
        self._held_out = None

    def _class_dirs(self, split_dir: Path) -> list[Path]:
        return sorted(p for p in split_dir.iterdir() if p.is_dir()) if split_dir.is_dir() else []

    @property
    def class_names(self):
        return tuple(p.name for p in self._class_dirs(self.root / "train"))

    @property
    def num_classes(self):
        return len(self.class_names)

    def missing_files(self, split):
        train = self.root / "train"
        return [] if self._class_dirs(train) else [train / "<class>" / "<image>.png"]

    def raise_missing(self, missing, reason):
        raise DlbookError(f"data=image_folder found no class folders under {self.root / 'train'}: "
                          f"lay images out as <root>/train/<class>/<image> (and optionally <root>/test/<class>/...) "
                          f"and set data.root to that folder.")

    def download(self):
        raise OSError("an image folder has nowhere to download from")

    def _decode_folder(self, split_dir: Path):
        names = self.class_names
        files, labels = [], []
        for label, name in enumerate(names):
            paths = image_files(split_dir / name)
            files += paths
            labels += [label] * len(paths)
        if not files:
            raise DlbookError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {split_dir}/<class>/.")
        return decode_images(files, self.image_size, self.channels), torch.tensor(labels)

    def _train_and_test(self):
        if self._held_out is None:
            images, labels = self._decode_folder(self.root / "train")
            if self._class_dirs(self.root / "test"):
                test = self._decode_folder(self.root / "test")
                train = (images, labels)
            else:
                n_test = round(len(images) * self.test_fraction)
                order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.split_seed))
                test = images[order[:n_test]], labels[order[:n_test]]
                train = images[order[n_test:]], labels[order[n_test:]]
            if self.mean is None:
                pixels = train[0].float().div(255.0).transpose(0, 1).reshape(self.channels, -1)
                self.mean = tuple(pixels.mean(1).tolist())
                self.std = tuple(pixels.std(1).clamp_min(1e-3).tolist())
            self._held_out = {"train": train, "test": test}
        return self._held_out

    def load_split(self, split):
        return self._train_and_test()[split]

    def state_dict(self):
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state):
        self.mean, self.std = state["mean"], state["std"]
