"""Tables of numeric features: scikit-learn's bundled sets and numeric text files (Boston housing), z-scored (or
min-max scaled) with statistics of the training rows."""

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from omegaconf import DictConfig

from dlbook.data.base import DataModule
from dlbook.data.batches import TensorsDataset
from dlbook.data.download import download_file
from dlbook.data.parsing import finite_number
from dlbook.data.spec import TabularSpec
from dlbook.errors import DlbookError, check_number


@dataclass(frozen=True)
class Table:
    """Every row of a dataset: features float32 (N, F); targets float32 (N, T) to regress, or int64 (N,) class
    indices when num_classes > 0."""

    features: torch.Tensor
    targets: torch.Tensor
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    num_classes: int = 0

    def spec(self) -> TabularSpec:
        return TabularSpec(num_features=self.features.shape[1],
                           num_targets=self.targets.shape[1] if self.num_classes == 0 else 1,
                           num_classes=self.num_classes, feature_names=self.feature_names,
                           target_names=self.target_names)

    def select(self, features: list | tuple | None) -> "Table":
        """The table of only these feature columns (names or indices, in this order); all with None."""
        if features is None:
            return self
        columns = feature_columns(self.feature_names, features)
        return replace(self, features=self.features[:, columns],
                       feature_names=tuple(self.feature_names[column] for column in columns))


def feature_columns(names: tuple[str, ...], features: list | tuple) -> list[int]:
    """The indices of `features` (column names or indices) among the feature `names`."""
    columns = []
    for feature in features:
        if isinstance(feature, int) and -len(names) <= feature < len(names):
            columns.append(feature % len(names))
        elif feature in names:
            columns.append(names.index(feature))
        else:
            raise DlbookError(f"data.features names {feature!r}, which is neither a feature column nor an index of "
                              f"one; the feature columns: {', '.join(names)}.")
    return columns


class ScaledRows(TensorsDataset):
    """Rows already scaled with the training statistics."""


SCALINGS = ("standard", "minmax", "none")


@dataclass(frozen=True)
class Scaling:
    """What each feature (and regression target) column has subtracted and is divided by, from the training rows:
    the mean and the population standard deviation (standard), the minimum and the range (minmax, to [0, 1] on the
    training rows), or 0 and 1 (none)."""

    feature_offset: torch.Tensor
    feature_scale: torch.Tensor
    target_offset: torch.Tensor | None  # None: class targets, left as they are
    target_scale: torch.Tensor | None

    @classmethod
    def of(cls, kind: str, features: torch.Tensor, targets: torch.Tensor, regression: bool) -> "Scaling":
        def statistics(values):
            if kind == "none":
                return torch.zeros(values.shape[1]), torch.ones(values.shape[1])
            if kind == "standard":  # population std, as the books' np.std
                offset, scale = values.mean(dim=0), values.std(dim=0, correction=0)
            else:  # scikit-learn's MinMaxScaler
                offset, scale = values.min(dim=0).values, values.max(dim=0).values - values.min(dim=0).values
            return offset, torch.where(scale > 0, scale, torch.ones_like(scale))  # a constant column is only shifted

        target_statistics = statistics(targets) if regression and kind != "none" else (None, None)
        return cls(*statistics(features), *target_statistics)

    def apply(self, dataset: TensorsDataset) -> ScaledRows:
        features, targets = dataset.tensors
        if self.target_offset is not None:
            targets = (targets - self.target_offset) / self.target_scale
        return ScaledRows((features - self.feature_offset) / self.feature_scale, targets)


class TabularDataModule(DataModule):
    """All rows of a table read at once; test_fraction of them held out as the test set (seeded by split_seed), the
    validation set split off the rest. Features, and regression targets, are scaled with statistics of the training
    rows only, once at setup: `scaling` standard (z-scores), minmax (to [0, 1]) or none; the target statistics go
    into the spec (target_mean and target_std hold the offset and scale), so tasks report errors in the original
    units. A test-only setup (eval.py) recomputes them from the same seeded rows. `features` keeps only the named
    (or indexed) feature columns.

    Subclasses implement `read_table` (and what DataModule asks for but `load_split`).
    """

    spec_type = TabularSpec

    def __init__(self, test_fraction: float = 0.2, scaling: str = "standard", features: list | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        check_number("data.test_fraction", test_fraction, least=0, below=1)
        if scaling not in SCALINGS:
            raise DlbookError(f"data.scaling={scaling!r} is not one of {', '.join(SCALINGS)}.")
        self.test_fraction = test_fraction
        self.scaling_kind = scaling
        self.features = None if features is None else list(features)
        self.scaling: Scaling | None = None
        self._table: Table | None = None

    def read_table(self) -> Table:
        raise NotImplementedError

    @property
    def table(self) -> Table:
        if self._table is None:
            self._table = self.read_table().select(self.features)
        return self._table

    @property
    def spec(self) -> TabularSpec:
        self.setup("fit")  # the target statistics come from the training rows
        spec = self.table.spec()
        if not spec.is_regression or self.scaling.target_offset is None:
            return spec
        return replace(spec, target_mean=tuple(self.scaling.target_offset.tolist()),
                       target_std=tuple(self.scaling.target_scale.tolist()))

    def split_rows(self, num_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the test rows, the others) of a table of num_rows rows: test_fraction of them, drawn with split_seed.
        A reader that fits something to the rows before they are split (a CSV file's fill values) asks here."""
        n_test = round(num_rows * self.test_fraction)
        order = torch.randperm(num_rows, generator=torch.Generator().manual_seed(self.split_seed))
        return order[:n_test], order[n_test:]

    def load_split(self, split):
        table = self.table
        test_rows, other_rows = self.split_rows(len(table.features))
        rows = test_rows if split == "test" else other_rows
        return table.features[rows], table.targets[rows]

    def setup(self, stage: str | None = None) -> None:
        super().setup("fit")  # the training rows, for the statistics, whatever the stage
        super().setup(stage)
        if self.scaling is None:
            self.scaling = Scaling.of(self.scaling_kind, *self.data_train.tensors,
                                      regression=self.table.num_classes == 0)
        for split in ("data_train", "data_val", "data_test"):
            dataset = getattr(self, split)
            if dataset is not None and not isinstance(dataset, ScaledRows):
                setattr(self, split, self.scaling.apply(dataset))

    def test_dataloader(self):
        if len(self.data_test) == 0:
            raise DlbookError(f"data={self.name} holds out no test rows (data.test_fraction={self.test_fraction}); "
                              f"set test=false, or data.test_fraction=0.2.")
        return super().test_dataloader()


SKLEARN_DATASETS = {  # data.dataset -> (scikit-learn loader, whether its targets are classes)
    "iris": ("load_iris", True),
    "wine": ("load_wine", True),
    "breast_cancer": ("load_breast_cancer", True),
    "diabetes": ("load_diabetes", False),
    "digits_vectors": ("load_digits", True),  # the 8x8 digits as 64 pixel values, 0-16
}


def read_sklearn(dataset: str) -> Table:
    import sklearn.datasets

    if dataset not in SKLEARN_DATASETS:
        raise DlbookError(f"data.dataset={dataset!r} is not one of {', '.join(SKLEARN_DATASETS)}.")
    loader, classes = SKLEARN_DATASETS[dataset]
    bunch = getattr(sklearn.datasets, loader)()
    features = torch.from_numpy(bunch.data).float()
    if classes:
        return Table(features, torch.from_numpy(bunch.target).long(), tuple(bunch.feature_names),
                     tuple(map(str, bunch.target_names)), num_classes=len(bunch.target_names))
    return Table(features, torch.from_numpy(bunch.target).float().unsqueeze(1), tuple(bunch.feature_names),
                 ("target",))


class SklearnTabularDataModule(TabularDataModule):
    """One of scikit-learn's bundled tables (data.dataset): iris, wine and breast cancer (classes), diabetes
    (regression), the 8x8 digits as vectors of 64 features (digits_vectors). They ship with scikit-learn: nothing
    to download."""

    layout = "(none: the table ships with scikit-learn)"

    def __init__(self, dataset: str, **kwargs):
        super().__init__(**kwargs)
        self.name = dataset

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> TabularSpec:
        # instant: the files ship with scikit-learn
        return read_sklearn(data_cfg.dataset).select(data_cfg.get("features")).spec()

    def read_table(self) -> Table:
        return read_sklearn(self.name)

    def missing_files(self, split):
        return []

    def download(self):
        pass


def file_spec(columns, target) -> TabularSpec:
    """The spec of a file whose `target` columns (a name or a list) are regressed on its other `columns`."""
    targets = [target] if isinstance(target, str) else list(target)
    unknown = [name for name in targets if name not in columns]
    if unknown:
        raise DlbookError(f"data.target names {', '.join(unknown)}, which data.columns ({', '.join(columns)}) lacks.")
    features = tuple(name for name in columns if name not in targets)
    return TabularSpec(num_features=len(features), num_targets=len(targets), feature_names=features,
                       target_names=tuple(targets))


class NumericFileDataModule(TabularDataModule):
    """One text file of numeric rows, <data_dir>/<name>/<file>, separated by whitespace (delimiter null) or by
    `delimiter`, after `skip_rows` header lines; `columns` names every column in order, and the `target`
    column(s) are regressed on the others. Every value must be a finite number: anything else is refused with its
    line and column. Downloaded from `url` when missing."""

    def __init__(self, name: str, file: str, url: str, columns: list[str], target: str | list[str],
                 delimiter: str | None = None, skip_rows: int = 0, md5: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.name = name
        self.file = file
        self.url = url
        self.md5 = md5
        self.columns = tuple(columns)
        self.file_spec = file_spec(self.columns, target)
        self.delimiter = delimiter
        self.skip_rows = skip_rows

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> TabularSpec:
        spec = file_spec(tuple(data_cfg.columns), data_cfg.target)
        if data_cfg.get("features") is None:
            return spec
        names = tuple(spec.feature_names[column] for column in feature_columns(spec.feature_names, data_cfg.features))
        return replace(spec, num_features=len(names), feature_names=names)

    @property
    def path(self) -> Path:
        return self.data_dir / self.name / self.file

    @property
    def layout(self) -> str:
        separator = "whitespace" if self.delimiter is None else repr(self.delimiter)
        return (f"{self.name}/{self.file} ({separator}-separated numbers, {len(self.columns)} columns: "
                f"{' '.join(self.columns)})")

    def missing_files(self, split):
        if self.path.is_dir():
            raise DlbookError(f"{self.path} is a folder; expected the file {self.layout}. Move the folder away (the "
                              f"file is downloaded when missing), or put the file in its place.")
        return [] if self.path.is_file() else [self.path]

    def download(self):
        download_file(self.url, self.path, self.md5)

    def read_table(self) -> Table:
        rows = []
        try:
            with open(self.path, encoding="utf-8") as file:
                for line, text in enumerate(file, 1):
                    if line > self.skip_rows and text.strip():
                        rows.append(self.read_row(text, line))
        except UnicodeDecodeError as error:
            raise DlbookError(f"{self.path} is not a table of numbers (not UTF-8 text: {error}); expected "
                              f"{self.layout}. Delete it to download it again.") from None
        if not rows:
            header = f" after its {self.skip_rows} header lines" if self.skip_rows else ""
            raise DlbookError(f"{self.path} is empty{header}; expected {self.layout}. Delete it to download it "
                              f"again.")
        values = torch.tensor(rows, dtype=torch.float32)
        spec = self.file_spec
        index = {name: i for i, name in enumerate(self.columns)}
        return Table(values[:, [index[name] for name in spec.feature_names]],
                     values[:, [index[name] for name in spec.target_names]], spec.feature_names, spec.target_names)

    def read_row(self, text: str, line: int) -> list[float]:
        """The numbers of the file's line `line`; a row of the wrong length or a value that is no finite number is
        an error naming the line."""
        fields = [field.strip() for field in text.split(self.delimiter)]
        if len(fields) != len(self.columns):
            raise DlbookError(f"{self.path}, line {line}: {len(fields)} values where {len(self.columns)} are "
                              f"expected: {self.layout}. If a download was cut short, delete the file to download "
                              f"it again.")
        values = [finite_number(field) for field in fields]
        if None in values:
            column = values.index(None)
            raise DlbookError(f"{self.path}, line {line}: column {self.columns[column]} holds {fields[column]!r}, "
                              f"which is no finite number; expected {self.layout}. Fix the value, or delete the "
                              f"file to download it again.")
        return values
