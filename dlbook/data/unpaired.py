"""Two unpaired image domains in CycleGAN's layout: <root>/trainA/*.png|jpg and <root>/trainB/...

monet2photo, horse2zebra and the other CycleGAN sets unpack this way; pix2pix sets such as edges2handbags
do after cutting each side-by-side image into its A and B halves. testA/ and testB/ may be there too; they are
not read, as CycleGAN has no test metric.
"""

from pathlib import Path

import torch
from omegaconf import DictConfig
from torch.utils.data import Dataset

from dlbook.data.base import InMemoryImageDataModule
from dlbook.data.image_folder import decode_images, image_files
from dlbook.data.spec import DataSpec, UnpairedImageSpec
from dlbook.errors import DlbookError

LAYOUT = "<root>/trainA/<image> and <root>/trainB/<image> (optionally testA/ and testB/)"


class UnpairedImageDataset(Dataset):
    """Batches (A images, B images) of uint8 tensors. A follows the sampler; B is drawn uniformly at random
    for each batch, so no A image is tied to a B image. An epoch is the larger domain."""

    def __init__(self, images_a: torch.Tensor, images_b: torch.Tensor):
        self.images_a = images_a
        self.images_b = images_b

    def __len__(self) -> int:
        return max(len(self.images_a), len(self.images_b))

    def to(self, device: torch.device) -> "UnpairedImageDataset":
        self.images_a, self.images_b = self.images_a.to(device), self.images_b.to(device)
        return self

    def __getitems__(self, indices: list[int]):
        device = self.images_a.device
        index_a = torch.tensor(indices).to(device, non_blocking=True) % len(self.images_a)  # see TensorImageDataset
        # Drawn from the global CPU stream, restored on resume, wherever the images are.
        index_b = torch.randint(len(self.images_b), (len(indices),)).to(device, non_blocking=True)
        return self.images_a.index_select(0, index_a), self.images_b.index_select(0, index_b)


class UnpairedFoldersDataModule(InMemoryImageDataModule):
    """Both domains decoded and resized to image_size x image_size once, scaled to [-1, 1] on the device and,
    with flip=true, mirrored at random (each image on its own). The whole of trainA/ and trainB/ is trained on.
    Other settings (shuffle_seed, crop_padding, pin_memory; on_device and channels_last, which train.py sets from
    the run's data_on_device and channels_last) are those of InMemoryImageDataModule."""

    name = "unpaired_folders"
    spec_type = UnpairedImageSpec

    def __init__(self, root: str, image_size: int = 64, channels: int = 3, batch_size: int = 1,
                 normalization: str = "symmetric", val_fraction: float = 0.0, flip: bool = True, **kwargs):
        super().__init__(batch_size=batch_size, normalization=normalization, val_fraction=val_fraction, flip=flip,
                         download=False, **kwargs)
        # No per-channel statistics are computed, and nothing is validated.
        if normalization == "standard":
            raise DlbookError("data=unpaired_folders scales images to [-1, 1] (normalization=symmetric) or [0, 1] "
                              "(unit); normalization=standard is not available")
        if val_fraction:
            raise DlbookError(f"data.val_fraction={val_fraction}: data=unpaired_folders trains on all of trainA/ "
                              f"and trainB/ and has no validation split; set it to 0")
        if channels not in (1, 3):
            raise DlbookError(f"data.channels={channels} must be 1 (grey) or 3 (RGB).")
        self.root = Path(root).expanduser().resolve()
        self.image_size = image_size
        self.channels = channels
        self.input_shape = (channels, image_size, image_size)
        self.num_classes = 0

    @property
    def spec(self) -> DataSpec:
        return UnpairedImageSpec(self.input_shape)

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> DataSpec:
        return UnpairedImageSpec((data_cfg.get("channels", 3), data_cfg.get("image_size", 64),
                                  data_cfg.get("image_size", 64)))

    def missing_files(self, split: str) -> list[Path]:
        if split != "train":
            return []
        return [self.root / domain for domain in ("trainA", "trainB") if not image_files(self.root / domain)]

    def raise_missing(self, missing: list[Path], reason: str):
        folders = " and ".join(str(path) for path in missing)
        raise DlbookError(f"data=unpaired_folders found no images in {folders}: lay the two domains out as "
                          f"{LAYOUT} and set data.root to that folder.")

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.data_train is None:
            missing = self.missing_files("train")
            if missing:
                self.raise_missing(missing, "")
            domains = [decode_images(image_files(self.root / domain), self.image_size, self.channels)
                       for domain in ("trainA", "trainB")]
            self.data_train = UnpairedImageDataset(*domains)

    def train_dataloader(self):
        return self.loader(self.data_train, self.batch_size, shuffle=True)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        augment = self.trainer is not None and self.trainer.training
        return tuple(self.preprocess(images, augment) for images in batch)
