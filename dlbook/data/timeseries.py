"""Time series from CSV files: one numeric column, in the file's order (oldest first), cut into sliding windows of
`window` steps that predict the next `horizon` values. data=timeseries reads any such file; airline_passengers,
sunspots, daily_min_temperatures, shampoo and stocks are the classic series, downloaded when missing."""

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from dlbook.data.base import DataModule
from dlbook.data.batches import TensorsDataset
from dlbook.data.csv_table import check_columns, in_order, read_rows
from dlbook.data.download import download_file, warn_unless_published
from dlbook.data.parsing import finite_number
from dlbook.data.spec import TimeSeriesSpec
from dlbook.data.tabular import SCALINGS, Scaling
from dlbook.errors import DatasetNotFoundError, DlbookError, check_number

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Series:
    """A column's values in file order, with the date of each when the file has a date column."""

    values: torch.Tensor  # (N,) float64
    dates: tuple[str, ...]  # () without a date column
    source: str  # the file and the rows chosen, for messages


def read_series(path: Path, column: str, date_column: str | None = None, where: dict | None = None,
                delimiter: str = ",") -> Series:
    """The numbers of `column` in the rows of `path` whose `where` columns hold the given values (a long table of
    several series, stocks.csv's symbol column)."""
    header, rows, lines = read_rows(path, delimiter)
    where = {name: str(value) for name, value in (where or {}).items()}
    check_columns("data.column", [column], header, str(path))
    if date_column is not None:
        check_columns("data.date_column", [date_column], header, str(path))
    check_columns("data.where", list(where), header, str(path))
    index = {name: position for position, name in enumerate(header)}
    source = str(path) + "".join(f", {name}={value}" for name, value in where.items())
    for name, value in where.items():
        kept = [(row, line) for row, line in zip(rows, lines) if row[index[name]] == value]
        if not kept:
            raise DlbookError(f"data.where selects the rows whose {name} is {value!r}, and {path} has none; its "
                              f"{name} values: {', '.join(in_order(row[index[name]] for row in rows))}.")
        rows, lines = [row for row, _ in kept], [line for _, line in kept]
    values = []
    for row, line in zip(rows, lines):
        value = finite_number(row[index[column]])
        if value is None:
            raise DlbookError(f"{path}, line {line}: column {column!r} holds {row[index[column]]!r}, which is no "
                              f"finite number. A series needs a number at every step: fill in or delete that row "
                              f"(and any like it).")
        values.append(value)
    dates = tuple(row[index[date_column]] for row in rows) if date_column is not None else ()
    return Series(torch.tensor(values, dtype=torch.float64), dates, source)


class TimeSeriesDataModule(DataModule):
    """One column of a CSV file with a header line (data.path, absolute or relative to the working directory; else
    <data_dir>/<file>, downloaded from `url` when missing and checked against `md5`), in the file's order, oldest
    first. `where` keeps the rows whose columns hold the given values; `date_column` labels the steps in figures.

    A sample is a window of `window` values and the `horizon` values after it. The split is chronological: the
    targets of the test windows are the last `test_fraction` of the values, those of the validation windows the
    last `val_fraction` of the rest, and the windows before them train; a window's inputs may reach back over a
    boundary (values known by then), its targets never. Values are scaled with statistics of the training values
    only (`scaling`: minmax to [0, 1], as the DL Workshop's MinMaxScaler; standard z-scores; none); the offset and
    scale go into the spec, so tasks report errors in the series' units. `newest_first` puts each window's steps
    in reverse order, as the DL Workshop's lookback features come (the value just before the targets first)."""

    spec_type = TimeSeriesSpec

    def __init__(self, column: str | None = None, path: str | None = None, name: str = "timeseries",
                 file: str | None = None, url: str | None = None, md5: str | None = None,
                 date_column: str | None = None, where: dict | None = None, window: int = 10, horizon: int = 1,
                 test_fraction: float = 0.2, scaling: str = "minmax", newest_first: bool = False,
                 delimiter: str = ",", **kwargs):
        super().__init__(**kwargs)
        if path is None and file is None:
            raise DlbookError(f"data={name} reads one column of a CSV file with a header line: set "
                              f"data.path=<file> (absolute, or relative to the working directory) and "
                              f"data.column=<column>.")
        self.name = name
        self.path_option = path
        self.path = Path(path).expanduser().resolve() if path is not None else self.data_dir / file
        if column is None:
            raise DlbookError(f"data.column is not set: name the column of {self.path} that holds the series, "
                              f"e.g. data.column=Passengers.")
        for option, value in (("window", window), ("horizon", horizon)):
            if not isinstance(value, int) or value < 1:
                raise DlbookError(f"data.{option}={value} must be a positive number of steps.")
        check_number("data.test_fraction", test_fraction, least=0, below=1)
        if scaling not in SCALINGS:
            raise DlbookError(f"data.scaling={scaling!r} is not one of {', '.join(SCALINGS)}.")
        self.column, self.date_column, self.where = column, date_column, dict(where or {})
        self.url, self.md5, self.delimiter = url, md5, delimiter
        self.window, self.horizon = window, horizon
        self.test_fraction, self.scaling_kind = test_fraction, scaling
        self.newest_first = newest_first
        self.offset = self.scale = None  # the scaling, from the training values once set up
        self.dates: tuple[str, ...] = ()
        self._windows: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> TimeSeriesSpec:
        # The shapes are the config's; the scaling, known only from the file, sizes nothing.
        return TimeSeriesSpec(window=data_cfg.window, horizon=data_cfg.horizon,
                              newest_first=data_cfg.get("newest_first", False))

    @property
    def spec(self) -> TimeSeriesSpec:
        self.setup("fit")
        names = ((self.column,) if self.horizon == 1 else
                 tuple(f"{self.column} (t+{step})" for step in range(1, self.horizon + 1)))
        return TimeSeriesSpec(window=self.window, horizon=self.horizon, series_names=(self.column,),
                              target_names=names, target_mean=(self.offset,) * self.horizon,
                              target_std=(self.scale,) * self.horizon, newest_first=self.newest_first)

    @property
    def layout(self) -> str:
        where = self.path.relative_to(self.data_dir) if self.path.is_relative_to(self.data_dir) else self.path
        return f"{where} (a CSV file with a header line and a {self.column} column)"

    def missing_files(self, split):
        return [] if self.path.is_file() else [self.path]

    def download(self):
        if self.url is None:
            raise FileNotFoundError(self.path)
        download_file(self.url, self.path, self.md5)

    def raise_missing(self, missing, reason):
        if self.url is not None:
            super().raise_missing(missing, reason)
        raise DatasetNotFoundError(f"data={self.name} reads {self.path} (data.path={self.path_option}), which is "
                                   f"not a file. Set data.path to a CSV file with a header line, absolute or "
                                   f"relative to the working directory ({Path.cwd()}).")

    def boundaries(self, length: int) -> tuple[int, int]:
        """Where the validation targets and the test targets start in a series of `length` values."""
        test_start = length - round(length * self.test_fraction)
        return test_start - round(test_start * self.val_fraction), test_start

    def split_windows(self) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each split's scaled windows (n, window, 1), their targets (n, horizon) and where the targets start in
        the series (n,)."""
        if self.md5 is not None and self.path_option is None:  # the md5 is the default file's, not data.path's
            warn_unless_published(self.path, self.md5)
        series = read_series(self.path, self.column, self.date_column, self.where, self.delimiter)
        values, length = series.values, len(series.values)
        val_start, test_start = self.boundaries(length)
        self.check_length(series, val_start, test_start)
        statistics = Scaling.of(self.scaling_kind, values[:val_start, None], values[:val_start, None],
                                regression=False)  # one column: the training values' statistics
        self.offset, self.scale = statistics.feature_offset.item(), statistics.feature_scale.item()
        self.dates = series.dates
        samples = ((values - self.offset) / self.scale).float().unfold(0, self.window + self.horizon, 1)
        if self.newest_first:
            samples = torch.cat([samples[:, :self.window].flip(1), samples[:, self.window:]], dim=1)
        starts = torch.arange(len(samples)) + self.window  # where each sample's targets start
        ends = starts + self.horizon
        chosen = {"train": ends <= val_start, "val": (starts >= val_start) & (ends <= test_start),
                  "test": starts >= test_start}
        return {split: (samples[rows, :self.window, None], samples[rows, self.window:], starts[rows])
                for split, rows in chosen.items()}

    def check_length(self, series: Series, val_start: int, test_start: int) -> None:
        length = len(series.values)
        held_out = {"validation": (test_start - val_start, "data.val_fraction"),
                    "test": (length - test_start, "data.test_fraction")}
        if val_start - self.window - self.horizon + 1 < 1:
            raise DlbookError(
                f"{series.source} holds {length} values, too few for windows of data.window={self.window} steps "
                f"predicting data.horizon={self.horizon}: the training part (the first {val_start} values, before "
                f"the {length - val_start} held out for validation and test) needs at least "
                f"{self.window + self.horizon}. Lower data.window, data.val_fraction or data.test_fraction, or "
                f"read a longer series.")
        for part, (size, option) in held_out.items():
            if 0 < size < self.horizon:
                raise DlbookError(f"The {part} part of {series.source} holds {size} values ({option}), fewer "
                                  f"than data.horizon={self.horizon} targets of one window: raise {option} or set "
                                  f"it to 0.")

    def load_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self._windows is None:
            self._windows = self.split_windows()
        inputs, targets, _ = self._windows[split]
        return inputs, targets

    def setup(self, stage: str | None = None) -> None:
        # Every split at once, whatever the stage: the scaling comes from the training values.
        if self.data_train is None:
            self.data_train, self.data_val, self.data_test = (TensorsDataset(*self._load_checked(split))
                                                              for split in SPLITS)
        if self.validate_on_test:
            self.data_val = self.data_test

    def target_positions(self, split: str) -> torch.Tensor:
        """Where the targets of the split's windows start in the series (for figures: with `dates`, when)."""
        self.setup()
        return self._windows["test" if split == "val" and self.validate_on_test else split][2]

    def test_dataloader(self):
        if len(self.data_test) == 0:
            raise DlbookError(f"data={self.name} holds out no test values (data.test_fraction="
                              f"{self.test_fraction}); set test=false, or data.test_fraction=0.2.")
        return super().test_dataloader()
