"""The datamodule bases: DataModule for data of every kind, InMemoryImageDataModule for images."""

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from dlbook.data.augment import RandomAffine, random_crop, random_flip
from dlbook.data.batches import TensorImageDataset, TensorsDataset, batch_loader
from dlbook.data.spec import DataSpec, ImageSpec
from dlbook.errors import DatasetNotFoundError, DlbookError, check_count, check_number

NORMALIZATIONS = ("standard", "symmetric", "unit")


class DataModule(L.LightningDataModule):
    """A dataset held in memory as tensors: files looked for under data_dir (downloaded when missing, else one
    paragraph naming the files and folder), a seeded validation split of the training set, and batches of one
    indexing op each, shuffled with a seed per epoch (a resumed run sees the batches it would have seen).

    Subclasses give `name`, `layout`, `spec_type` and `spec`, and implement `missing_files`, `download` and
    `load_split`; `fixed_spec` when the spec is known without this run's files.
    """

    name: str
    layout: str  # where the files lie under data_dir, for the missing-dataset message
    spec_type: type[DataSpec]  # what `spec` returns: the cheap model/data check compares it with Task.accepts
    one_process_only: str | None = None  # why the data cannot be dealt out to DDP's processes; None: it can
    dataset_type = TensorsDataset  # wraps the tensors of load_split

    def __init__(self, data_dir: str = "data", batch_size: int = 128, eval_batch_size: int | None = None,
                 val_fraction: float = 0.1, split_seed: int = 42, shuffle_seed: int = 0, download: bool = True,
                 pin_memory: bool = False, validate_on_test: bool = False):
        super().__init__()
        check_number("data.val_fraction", val_fraction, least=0, below=1)
        check_count("data.batch_size", batch_size)
        if validate_on_test and val_fraction:
            raise DlbookError(f"data.validate_on_test=true validates on the test set, so no validation split is "
                              f"held out of the training set: set data.val_fraction=0 (it is {val_fraction}).")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.shuffle_seed = shuffle_seed
        self.download_allowed = download
        self.pin_memory = pin_memory
        self.validate_on_test = validate_on_test
        self.data_train = self.data_val = self.data_test = None

    # -- what subclasses provide -------------------------------------------------------------------
    @property
    def spec(self) -> DataSpec:
        raise NotImplementedError

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> DataSpec | None:
        """The spec a data config gives, when the class and the config's plain values fix it (no files read);
        None when only this run's files tell (an image folder)."""
        return None

    def missing_files(self, split: str) -> list[Path]:
        """Files that `load_split(split)` needs and that are not on disk."""
        raise NotImplementedError

    def download(self) -> None:
        raise NotImplementedError

    def load_split(self, split: str) -> tuple[torch.Tensor, ...]:
        """The tensors of split "train" or "test", one row per sample, in the order `dataset_type` takes."""
        raise NotImplementedError

    # -- Lightning hooks ---------------------------------------------------------------------------
    def prepare_data(self) -> None:
        missing = list(dict.fromkeys(self.missing_files("train") + self.missing_files("test")))  # a file may serve both
        if not missing:
            return
        if self.download_allowed:
            try:
                self.download()
                return
            except Exception as error:  # no network, mirror down, bad checksum
                reason = f"downloading it failed ({type(error).__name__}: {error})"
        else:
            reason = "data.download=false"
        self.raise_missing(missing, reason)

    def raise_missing(self, missing: list[Path], reason: str):
        listed = ", ".join(str(path.relative_to(self.data_dir)) if path.is_relative_to(self.data_dir) else str(path)
                           for path in missing)
        raise DatasetNotFoundError(
            f"Dataset '{self.name}' is not in {self.data_dir} and {reason}. Missing ({len(missing)}, under that "
            f"folder): {listed}. Expected layout: {Path(self.data_dir) / self.layout}. Put the files there, or "
            f"point paths.data_dir (env DLBOOK_DATA_DIR) at a folder that holds them, or run once on a machine "
            f"with network access to download them.")

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.data_train is None:
            train = self.dataset_type(*self._load_checked("train"))
            n_val = round(len(train) * self.val_fraction)
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.split_seed))
            self.data_val, self.data_train = train.subset(order[:n_val]), train.subset(order[n_val:])
        if (stage in (None, "test", "predict") or self.validate_on_test) and self.data_test is None:
            self.data_test = self.dataset_type(*self._load_checked("test"))
        if self.validate_on_test:
            self.data_val = self.data_test

    def _load_checked(self, split: str):
        missing = self.missing_files(split)
        if missing:
            self.raise_missing(missing, "it was not downloaded")
        return self.load_split(split)

    def train_dataloader(self):
        return self.loader(self.data_train, self.batch_size, shuffle=True)

    def val_dataloader(self):
        if len(self.data_val) == 0:
            return []
        return self.loader(self.data_val, self.eval_batch_size, shuffle=False)

    def test_dataloader(self):
        return self.loader(self.data_test, self.eval_batch_size, shuffle=False)

    def predict_dataloader(self):
        return self.test_dataloader()

    def loader(self, dataset, batch_size: int, shuffle: bool):
        device = self.data_device()
        if device is not None:
            dataset.to(device)
        return batch_loader(dataset, batch_size, shuffle=shuffle, seed=self.shuffle_seed if shuffle else 0,
                            pin_memory=self.pin_memory and (device is None or device.type == "cpu"),
                            lengths=self.bucket_lengths(dataset) if shuffle else None)

    def bucket_lengths(self, dataset) -> torch.Tensor | None:
        """Each sample's length, for training batches of samples of similar length; None: batches at random."""
        return None

    def data_device(self):
        """The device the whole dataset moves to before batching, or None to batch on the host."""
        return None


class InMemoryImageDataModule(DataModule):
    """Images decoded once into uint8 tensors (N, C, H, W), normalised and augmented as whole batches on the
    device they were moved to; with on_device the whole dataset lives on the accelerator.

    Subclasses give `input_shape` (as stored; `image_size` resizes the batches), `num_classes`, `class_names`,
    `mean`, `std` (and what DataModule asks for).
    """

    spec_type = ImageSpec
    dataset_type = TensorImageDataset
    input_shape: tuple[int, int, int]
    num_classes: int
    class_names: tuple[str, ...] = ()
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(self, normalization: str = "standard", flip: bool = False, crop_padding: int = 0,
                 on_device: bool = False, channels_last: bool = False, image_size: int | None = None,
                 rotation_degrees: float = 0.0, width_shift: float = 0.0, height_shift: float = 0.0,
                 shear_degrees: float = 0.0, zoom: float = 0.0, fill_mode: str = "nearest", **kwargs):
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise DlbookError(f"data.normalization={normalization!r} is not one of {', '.join(NORMALIZATIONS)}.")
        if image_size is not None:
            check_count("data.image_size", image_size, note=" (pixels), or null")
        check_count("data.crop_padding", crop_padding, least=0, note=" (pixels of zero padding to crop from)")
        self.resize_to = image_size  # resized on the device, batch by batch (Pro DL's MNIST at 32x32)
        self.normalization = normalization
        self.flip = flip
        self.crop_padding = crop_padding
        self.random_affine = RandomAffine(rotation_degrees, width_shift, height_shift, shear_degrees, zoom, fill_mode)
        self.on_device = on_device
        self.channels_last = channels_last
        self._standardization_cache = None

    @property
    def spec(self) -> DataSpec:
        shape = self.input_shape if self.resize_to is None else (self.input_shape[0], self.resize_to, self.resize_to)
        return ImageSpec(tuple(shape), self.num_classes, tuple(self.class_names))

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> DataSpec | None:
        if not isinstance(getattr(cls, "input_shape", None), tuple):
            return None  # shape set per run from the files, e.g. image_folder
        size = data_cfg.get("image_size")
        shape = cls.input_shape if size is None else (cls.input_shape[0], size, size)
        return ImageSpec(shape, cls.num_classes, tuple(cls.class_names))

    def data_device(self):
        """With on_device, the trainer's device (each DDP rank's own): batches are gathered there and nothing is
        copied from the host per batch but the indices."""
        return self.trainer.strategy.root_device if self.on_device and self.trainer is not None else None

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        return self.preprocess(images, augment=self.trainer is not None and self.trainer.training), labels

    def preprocess(self, images: torch.Tensor, augment: bool) -> torch.Tensor:
        """uint8 batch -> normalised float batch, randomly cropped, rotated/shifted/sheared/zoomed and flipped
        when augmenting."""
        images = self.normalize(images)
        if self.resize_to is not None:
            images = F.interpolate(images, size=(self.resize_to, self.resize_to), mode="bilinear", antialias=True)
        if augment and self.crop_padding:
            images = random_crop(images, self.crop_padding)
        if augment:  # a no-op when every range is 0
            images = self.random_affine(images)
        if augment and self.flip:
            images = random_flip(images)
        if self.channels_last:  # the layout the net's convolutions were put in
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        images = images.float()
        if self.normalization == "unit":
            return images / 255.0
        if self.normalization == "symmetric":  # [-1, 1], matching a tanh generator
            return images / 127.5 - 1.0
        scale, shift = self._standardization(images.device)
        return torch.addcmul(shift, images, scale)  # (x / 255 - mean) / std

    def _standardization(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        # Made once per device: building them from Python floats every batch is a host-to-device copy.
        key = (device, self.mean, self.std)
        if self._standardization_cache is None or self._standardization_cache[0] != key:
            mean = torch.tensor(self.mean).view(1, -1, 1, 1)
            std = torch.tensor(self.std).view(1, -1, 1, 1)
            self._standardization_cache = (key, (1.0 / (255.0 * std)).to(device), (-mean / std).to(device))
        return self._standardization_cache[1:]
