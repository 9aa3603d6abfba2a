"""Small tables generated in memory, seeded: the books' truth tables and synthetic sets. Nothing is downloaded."""

import torch
from omegaconf import DictConfig

from dlbook.data.batches import TensorsDataset
from dlbook.data.spec import TabularSpec
from dlbook.data.tabular import Table, TabularDataModule
from dlbook.errors import DlbookError

# data.table -> (input names, the output as a function of the input columns)
TRUTH_TABLES = {
    "and": (("A", "B"), lambda a, b: a * b),
    "or": (("A", "B"), lambda a, b: torch.maximum(a, b)),
    "xor": (("A", "B"), lambda a, b: (a != b).float()),
    # TF 1.x Deep Learning Cookbook, ch. 3: the single-layer perceptron's Y = AB + BC (Boolean OR of the terms)
    "ab_plus_bc": (("A", "B", "C"), lambda a, b, c: torch.maximum(a * b, b * c)),
}


def truth_table(table: str) -> Table:
    if table not in TRUTH_TABLES:
        raise DlbookError(f"data.table={table!r} is not one of {', '.join(TRUTH_TABLES)}.")
    names, output = TRUTH_TABLES[table]
    # Rows in counting order, 00, 01, 10, 11, ...: the order the books print them in.
    rows = torch.tensor([[(row >> (len(names) - 1 - bit)) & 1 for bit in range(len(names))]
                         for row in range(2 ** len(names))], dtype=torch.float32)
    return Table(rows, output(*rows.T).long(), names, ("0", "1"), num_classes=2)


class TruthTableDataModule(TabularDataModule):
    """A Boolean function's whole truth table (data.table: and, or, xor, ab_plus_bc) with its output as two
    classes. The table is all there is to learn and to check, so it is the training, validation and test set at
    once, as in the books; inputs stay 0 and 1."""

    layout = "(none: the table is generated)"

    def __init__(self, table: str, **kwargs):
        kwargs.setdefault("scaling", "none")
        super().__init__(test_fraction=0.0, val_fraction=0.0, **kwargs)
        self.name = table
        truth_table(table)  # an unknown table fails at once

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> TabularSpec:
        return truth_table(data_cfg.table).spec()

    def read_table(self) -> Table:
        return truth_table(self.name)

    def missing_files(self, split):
        return []

    def download(self):
        pass

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.data_val is not self.data_train:  # every split is the whole table, in the order the books print it
            table = self.scaling.apply(TensorsDataset(self.table.features, self.table.targets))
            self.data_train = self.data_val = self.data_test = table


def randn_regression(num_samples: int, generator: torch.Generator) -> Table:
    """Hands-On Deep Learning Algorithms, ch. 3: np.random.randn(500, 2), column 0 the input x, column 1 the
    target y; independent draws, so the best line is flat."""
    values = torch.randn(num_samples, 2, generator=generator)
    return Table(values[:, :1], values[:, 1:], ("x",), ("y",))


def four_point_line(num_samples: int, generator: torch.Generator) -> Table:
    """The Deep Learning Workshop, ch. 1, Ex. 1.06: x = 1, 2, 3, 4 and y = 0, -1, -2, -3 (y = 1 - x)."""
    x = torch.arange(1.0, 5.0).unsqueeze(1)
    return Table(x, 1.0 - x, ("x",), ("y",))


def gaussian_blobs(num_samples: int, generator: torch.Generator, centers: int = 3, cluster_std: float = 1.0,
                   box: float = 10.0) -> Table:
    """`centers` isotropic 2-D Gaussian blobs with centres drawn uniformly in [-box, box]^2; the blob is the
    class."""
    middles = (torch.rand(centers, 2, generator=generator) * 2 - 1) * box
    labels = torch.arange(num_samples) % centers
    points = middles[labels] + cluster_std * torch.randn(num_samples, 2, generator=generator)
    return Table(points, labels, ("x1", "x2"), tuple(f"blob {i}" for i in range(centers)), num_classes=centers)


# The corners of the RGB cube, in the binary order of their (R, G, B) bits
CUBE_CORNERS = ("black", "blue", "green", "cyan", "red", "magenta", "yellow", "white")


def colors(num_samples: int, generator: torch.Generator) -> Table:
    """A stand-in for the TF 1.x Cookbook's colors.csv (ch. 7, the self-organising map), which the book does not
    print: R, G, B drawn uniformly in [0, 1], each colour named, as its class, by the nearest corner of the RGB
    cube (black, blue, green, cyan, red, magenta, yellow, white)."""
    rgb = torch.rand(num_samples, 3, generator=generator)
    corners = (rgb.round() * torch.tensor([4.0, 2.0, 1.0])).sum(dim=1).long()
    return Table(rgb, corners, ("R", "G", "B"), CUBE_CORNERS, num_classes=len(CUBE_CORNERS))


SYNTHETIC = {"randn_regression": randn_regression, "four_point_line": four_point_line, "blobs": gaussian_blobs,
             "colors": colors}


class SyntheticDataModule(TabularDataModule):
    """A generated table (data.dataset: randn_regression, four_point_line, blobs), drawn with its own generator
    seeded by data.generation_seed; `options` go to the generator function (e.g. centers, cluster_std of the
    blobs). Split and scaled as any table."""

    layout = "(none: the table is generated)"

    def __init__(self, dataset: str, num_samples: int = 500, generation_seed: int = 0, options: dict | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if dataset not in SYNTHETIC:
            raise DlbookError(f"data.dataset={dataset!r} is not one of {', '.join(SYNTHETIC)}.")
        self.name = dataset
        self.num_samples = num_samples
        self.generation_seed = generation_seed
        self.options = dict(options or {})

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> TabularSpec:
        return cls.generate(data_cfg.dataset, data_cfg.get("num_samples", 500), 0,
                            dict(data_cfg.get("options") or {})).select(data_cfg.get("features")).spec()

    @staticmethod
    def generate(dataset: str, num_samples: int, seed: int, options: dict) -> Table:
        try:
            return SYNTHETIC[dataset](num_samples, torch.Generator().manual_seed(seed), **options)
        except TypeError as error:
            raise DlbookError(f"data.options of data.dataset={dataset} are wrong: {error}.") from None

    def read_table(self) -> Table:
        return self.generate(self.name, self.num_samples, self.generation_seed, self.options)

    def missing_files(self, split):
        return []

    def download(self):
        pass
