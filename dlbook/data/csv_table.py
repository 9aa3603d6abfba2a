"""Tables read from CSV files: a header line naming the columns, then one row a line. Text (categorical) feature
columns are one-hot encoded, missing values are filled in and reported, and the target column(s) are regressed
or, when the target holds only text or data.task=classification, taken as classes. data=csv reads any such file;
data=california_housing is the Hands-On ML copy of the 1990 California census table."""

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from dlbook.data.download import download_archive, download_file
from dlbook.data.parsing import finite_number, number
from dlbook.data.spec import TabularSpec
from dlbook.data.tabular import Table, TabularDataModule
from dlbook.errors import DatasetNotFoundError, DlbookError

log = logging.getLogger(__name__)

TASKS = ("auto", "regression", "classification")
MISSING_VALUES = ("", "NA", "N/A", "NaN", "nan", "null", "?")  # "?": UCI's mark
# What to do about a value that is no number, in a column that must hold numbers
FEATURE_ADVICE = "if the column holds categories, list it in data.categorical to one-hot encode it"
TARGET_ADVICE = "to classify the target's values, set data.task=classification"
NAMED_VALUES = 5  # the bad values of a column one message names; it counts the others


def in_order(values) -> tuple[str, ...]:
    """Distinct values sorted: as numbers when they all are, else as text."""
    distinct = set(values)
    return tuple(sorted(distinct, key=float) if all(number(value) is not None for value in distinct) else
                 sorted(distinct))


def as_list(names) -> list[str]:
    """A column name or a list of them, as a list."""
    return [names] if isinstance(names, str) else list(names)


def check_columns(option: str, names, columns, where: str) -> None:
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise DlbookError(f"{option} names {', '.join(map(repr, unknown))}, which {where} has no column of; its "
                          f"columns: {', '.join(columns)}.")


@dataclass(frozen=True)
class Layout:
    """How a file's columns become a table: the feature columns in the file's order, each categorical one replaced
    by one 0/1 column a category, named <column>=<category>; the target columns, and the classes of a classified
    target (None: regression)."""

    features: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]  # categorical feature column -> its categories, in one-hot order
    targets: tuple[str, ...]
    classes: tuple[str, ...] | None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(name for column in self.features
                     for name in ([f"{column}={category}" for category in self.categories[column]]
                                  if column in self.categories else [column]))

    def table(self, features: np.ndarray, targets: np.ndarray) -> Table:
        if self.classes is None:
            return Table(torch.from_numpy(features).float(), torch.from_numpy(targets).float(), self.feature_names,
                         self.targets)
        return Table(torch.from_numpy(features).float(), torch.from_numpy(targets).long(), self.feature_names,
                     self.classes, num_classes=len(self.classes))

    def empty_table(self) -> Table:
        """No rows: its spec is the file's."""
        targets = np.zeros((0, len(self.targets))) if self.classes is None else np.zeros(0, dtype=np.int64)
        return self.table(np.zeros((0, len(self.feature_names))), targets)


def read_rows(path: Path, delimiter: str) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the rows of fields with surrounding spaces stripped, and each row's line in the file (blank
    lines are skipped). A row ends with its line: a quoted field holding a line break is refused."""
    end = 0  # the last line of the rows read so far
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:  # -sig: spreadsheets' byte-order mark
            reader = csv.reader(file, delimiter=delimiter)
            header, rows, lines = None, [], []
            for row in reader:
                start, end = end + 1, reader.line_num
                if end > start:  # only a quoted field carries a row over a line break
                    raise unclosed_quote(path, start, f"and runs on to line {end}")
                if len(row) <= 1 and not "".join(row).strip():
                    continue
                fields = [field.strip() for field in row]
                if header is None:
                    header = fields
                elif len(fields) != len(header):
                    raise DlbookError(f"{path}, line {start}: {len(fields)} fields where the header has "
                                      f"{len(header)} ({', '.join(header)}). Every row needs one field per column, "
                                      f"an empty one where a value is missing; fields are separated by "
                                      f"{delimiter!r} (data.delimiter).")
                else:
                    rows.append(fields)
                    lines.append(start)
    except csv.Error as error:  # the csv module tells its errors apart by their text alone
        if "field limit" not in str(error):
            raise DlbookError(f"{path} is not a CSV file of UTF-8 text (line {end + 1}: {error}).") from None
        raise unclosed_quote(path, end + 1, f"and runs on over {csv.field_size_limit()} characters") from None
    except UnicodeDecodeError as error:
        raise DlbookError(f"{path} is not a CSV file of UTF-8 text ({type(error).__name__}: {error}).") from None
    if header is None:
        raise DlbookError(f"{path} is empty: a CSV file needs a header line naming its columns, then one row a "
                          f"line.")
    if all(number(name) is not None for name in header):  # read as names, the first row would be lost
        raise DlbookError(f"{path} starts with a row of numbers ({', '.join(header[:6])}"
                          f"{', ...' if len(header) > 6 else ''}) where its header line should name the columns: "
                          f"add a header line.")
    if not rows:
        raise DlbookError(f"{path} has a header line ({', '.join(header)}) but no rows.")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DlbookError(f"{path} names the column(s) {', '.join(map(repr, repeated))} more than once in its "
                          f"header; each column needs its own name.")
    return header, rows, lines


def unclosed_quote(path: Path, line: int, extent: str) -> DlbookError:
    # CSV lets a quoted field hold line breaks, but a table's numbers and categories never do: such a field is a
    # quote left open, which swallows the rows after it into one value (or runs into the csv module's field limit).
    return DlbookError(f"{path}, line {line}: a field opened with a quote (\") does not close on that line "
                       f"{extent}. A quote is likely missing or stray on line {line}: close it, or write a quote "
                       f"inside a quoted field as two (\"\").")


class CSVTableDataModule(TabularDataModule):
    """One CSV file with a header line: data.path (absolute, or relative to the working directory), else
    <data_dir>/<name>/<file>, downloaded from `url` when missing (the file itself, or an archive holding it).

    `target`: the column (or list of columns) to predict. `task`: regression, classification (one target column,
    its distinct values the classes, in sorted order) or auto (classification when the target holds text and no
    number). `categorical`: the feature columns to one-hot encode; null takes those holding text and no number. A
    column that is not categorical must hold finite numbers: any other value there is an error. `categories`: a column's
    categories (or the target's classes) in their one-hot (class) order; other values are an error; otherwise
    the sorted values found in the file. `columns`: the header the file must have (null: any).

    Fields in `missing_values` are missing. Rows missing a target are dropped; missing feature values are filled
    with the median (numbers) or the most frequent category of the rows not held out for testing, so the test
    rows inform nothing, as the scaling; both are logged, naming each column and its count. Given `columns`,
    `categorical`, a regression or classification `task` and the categories of every categorical column (and of a
    classified target), the spec is known without the file."""

    def __init__(self, target: str | list[str] | None = None, path: str | None = None, name: str = "csv",
                 file: str | None = None, url: str | None = None, md5: str | None = None, task: str = "auto",
                 categorical: list[str] | None = None, categories: dict | None = None,
                 columns: list[str] | None = None, missing_values: list[str] = MISSING_VALUES,
                 delimiter: str = ",", **kwargs):
        super().__init__(**kwargs)
        if path is None and file is None:
            raise DlbookError(f"data={name} reads one CSV file with a header line: set data.path=<file> (absolute, "
                              f"or relative to the working directory) and data.target=<column>.")
        if task not in TASKS:
            raise DlbookError(f"data.task={task!r} is not one of {', '.join(TASKS)}.")
        self.name = name
        self.path_option = path
        self.path = Path(path).expanduser().resolve() if path is not None else self.data_dir / name / file
        if target is None:
            raise DlbookError(f"data.target is not set: name the column of {self.path} to predict (or list "
                              f"several), e.g. data.target=price.")
        self.targets = as_list(target)
        self.url = url
        self.md5 = md5
        self.task = task
        self.categorical = None if categorical is None else as_list(categorical)
        self.categories = {column: tuple(map(str, values)) for column, values in (categories or {}).items()}
        self.columns = None if columns is None else list(columns)
        self.missing_values = frozenset(missing_values)
        self.delimiter = delimiter
        self.filled: dict[str, int] = {}  # feature column -> missing values filled, once the file is read

    @classmethod
    def fixed_spec(cls, data_cfg: DictConfig) -> TabularSpec | None:
        columns, categorical = data_cfg.get("columns"), data_cfg.get("categorical")
        task, categories = data_cfg.get("task", "auto"), dict(data_cfg.get("categories") or {})
        if columns is None or categorical is None or task == "auto":
            return None  # the file tells
        targets = as_list(data_cfg.target)
        check_columns("data.target", targets, columns, "data.columns")
        encoded = [column for column in (*as_list(categorical), *categories) if column not in targets]
        if any(column not in categories for column in encoded):
            return None
        if task == "classification" and targets[0] not in categories:
            return None
        layout = Layout(tuple(column for column in columns if column not in targets),
                        {column: tuple(map(str, categories[column])) for column in encoded}, tuple(targets),
                        tuple(map(str, categories[targets[0]])) if task == "classification" else None)
        return layout.empty_table().select(data_cfg.get("features")).spec()

    @property
    def layout(self) -> str:
        header = f": {', '.join(self.columns)}" if self.columns else ""
        return f"{self.name}/{self.path.name} (a CSV file with a header line{header})"

    def missing_files(self, split):
        return [] if self.path.is_file() else [self.path]

    def download(self):
        if self.url is None:
            raise FileNotFoundError(self.path)
        if self.url.rsplit("/", 1)[-1] == self.path.name:
            download_file(self.url, self.path, self.md5)
            return
        download_archive(self.url, self.path.parent, self.md5)  # an archive that holds the file
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.url} holds no {self.path.name}")

    def raise_missing(self, missing, reason):
        if self.url is not None:
            super().raise_missing(missing, reason)
        given = f"data.path={self.path_option}" if self.path_option is not None else f"<data_dir>/{self.name}"
        raise DatasetNotFoundError(f"data={self.name} reads {self.path} ({given}), which is not a file. Set "
                                   f"data.path to a CSV file with a header line, absolute or relative to the "
                                   f"working directory ({Path.cwd()}).")

    def read_table(self) -> Table:
        header, rows, lines = read_rows(self.path, self.delimiter)
        if self.columns is not None and header != self.columns:
            raise DlbookError(f"{self.path} has the columns {', '.join(header)}; data.columns expects "
                              f"{', '.join(self.columns)}.")
        check_columns("data.target", self.targets, header, str(self.path))
        features = [name for name in header if name not in self.targets]
        check_columns("data.categorical", self.categorical or (), features, f"{self.path} (but its target)")
        check_columns("data.categories", self.categories, header, str(self.path))
        fields, lines = self.rows_with_targets(dict(zip(header, zip(*rows))), lines)

        classes = self.target_classes(fields)
        if classes is None:
            targets = np.stack([self.numbers(name, fields[name], lines, TARGET_ADVICE) for name in self.targets],
                               axis=1)
        else:
            targets = self.indices(self.targets[0], fields[self.targets[0]], classes, lines)
        categorical = set(self.categories) | set(
            self.categorical if self.categorical is not None else
            (name for name in features if self.holds_only_text(fields[name])))
        layout = Layout(tuple(features), {name: self.categories_of(name, fields[name]) for name in features
                                          if name in categorical}, tuple(self.targets), classes)
        _, training = self.split_rows(len(lines))
        columns, filled = [], []
        for name in features:
            categories = layout.categories.get(name)
            if categories:
                values = self.indices(name, fields[name], categories, lines)
                fill = self.fill(name, values, values < 0, training,
                                 lambda known: np.bincount(known, minlength=len(categories)).argmax())
                columns.append(np.eye(len(categories))[values])
            else:
                values = self.numbers(name, fields[name], lines, FEATURE_ADVICE)
                fill = self.fill(name, values, np.isnan(values), training, np.median)
                columns.append(values[:, None])
            if fill is not None:
                described = f"most frequent {categories[fill]!r}" if categories else f"median {fill:g}"
                filled.append(f"{name} {self.filled[name]} ({described})")
        if filled:
            log.info(f"data={self.name}: filled missing values of {self.path.name} with the median (numbers) or the "
                     f"most frequent category of the {len(training)} rows not held out for testing: "
                     f"{', '.join(filled)}.")
        return layout.table(np.concatenate(columns, axis=1), targets)

    def rows_with_targets(self, fields: dict[str, tuple[str, ...]], lines: list[int]):
        """The columns and lines of the rows whose targets are there; the others are dropped, and logged."""
        kept = [row for row in range(len(lines))
                if all(fields[name][row] not in self.missing_values for name in self.targets)]
        dropped = [lines[row] for row in sorted(set(range(len(lines))) - set(kept))]
        if not kept:
            raise DlbookError(f"Every row of {self.path} misses its target ({', '.join(self.targets)}): there "
                              f"is nothing to learn.")
        if dropped:
            log.info(f"data={self.name}: dropped the {len(dropped)} of {len(lines)} rows of {self.path.name} that "
                     f"miss their target ({', '.join(self.targets)}), on lines "
                     f"{', '.join(map(str, dropped[:10]))}{' ...' if len(dropped) > 10 else ''}.")
        return {name: [column[row] for row in kept] for name, column in fields.items()}, [lines[row] for row in kept]

    def target_classes(self, fields: dict) -> tuple[str, ...] | None:
        """The target's classes, or None to regress."""
        target = self.targets[0]
        # auto classifies a target that holds only text, the rule that makes a feature categorical. A column of
        # numbers with one stray text value (a typo) is thus regressed and that value refused by its line, not
        # split into a class for each distinct number (thousands); data.task=classification takes numbers, or
        # numbers mixed with text, as classes.
        if self.task == "regression" or (self.task == "auto" and target not in self.categories and
                                         not any(self.holds_only_text(fields[name]) for name in self.targets)):
            if target in self.categories:
                raise DlbookError(f"data.categories lists classes of the target {target!r}, which data.task="
                                  f"regression regresses: drop them, or set data.task=classification.")
            return None
        if len(self.targets) > 1:
            raise DlbookError(f"data.target names {len(self.targets)} columns ({', '.join(self.targets)}) to "
                              f"classify; classification takes one. Set data.task=regression to regress numbers, "
                              f"or name one target column.")
        return self.categories.get(target) or in_order(fields[target])

    def holds_only_text(self, values) -> bool:
        known = [value for value in values if value not in self.missing_values]
        return bool(known) and all(number(value) is None for value in known)

    def categories_of(self, name: str, values) -> tuple[str, ...]:
        if name in self.categories:
            return self.categories[name]
        return in_order(value for value in values if value not in self.missing_values)

    def numbers(self, name: str, values, lines: list[int], advice: str) -> np.ndarray:
        """The column as float64, NaN where missing; a value that is no finite number is an error."""
        parsed = [np.nan if value in self.missing_values else finite_number(value) for value in values]
        bad = [(lines[row], values[row]) for row, number in enumerate(parsed) if number is None]
        if bad:
            raise self.not_numbers(name, bad, advice)
        return np.array(parsed, dtype=np.float64)

    def not_numbers(self, name: str, bad: list[tuple[int, str]], advice: str) -> DlbookError:
        """The error for the (line, value) pairs of a column of numbers that hold no finite number: the first
        few named, the others counted."""
        (line, value), named = bad[0], ", ".join(f"line {at} {text!r}" for at, text in bad[1:NAMED_VALUES])
        more = f" ({len(bad) - 1} more: {named}{', ...' if len(bad) > NAMED_VALUES else ''})" if named else ""
        # inf and nan are no categories either: encoding or classifying the column only helps where it holds text
        advice = f"or, {advice}; " if any(number(text) is None for _, text in bad) else ""
        missing = ", ".join(map(repr, sorted(self.missing_values)))
        return DlbookError(f"{self.path}, line {line}: column {name!r} holds {value!r}, which is no finite number, "
                           f"in a column of numbers{more}. Fix the value; {advice}or, if {value!r} marks a missing "
                           f"value, add it to data.missing_values (now {missing}).")

    def indices(self, name: str, values, categories: tuple[str, ...], lines: list[int]) -> np.ndarray:
        """Each value's index among the categories, -1 where missing; a value outside them is an error."""
        index = {category: i for i, category in enumerate(categories)}
        indices = np.full(len(values), -1, dtype=np.int64)
        for row, value in enumerate(values):
            if value in self.missing_values:
                continue
            if value not in index:
                raise DlbookError(f"{self.path}, line {lines[row]}: column {name!r} holds {value!r}, which is "
                                  f"not among its data.categories: {', '.join(map(repr, categories))}.")
            indices[row] = index[value]
        return indices

    def fill(self, name: str, values: np.ndarray, missing: np.ndarray, training: torch.Tensor, statistic):
        """Fills the missing entries of `values` in place with `statistic` of the column's known values in the
        training rows, counts them in `filled` and returns the value; None when none is missing."""
        count = int(missing.sum())
        if not count:
            return None
        known = values[training.numpy()][~missing[training.numpy()]]
        if not len(known):
            raise DlbookError(f"Column {name!r} of {self.path} has no value in the {len(training)} rows not held "
                              f"out for testing to fill its {count} missing ones with.")
        value = statistic(known)
        values[missing] = value
        self.filled[name] = count
        return value
