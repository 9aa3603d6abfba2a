"""Predict with a trained classifier or regressor on new inputs:

  python scripts/predict.py ckpt_path=outputs/train/runs/<timestamp> input=digits/          # images
  python scripts/predict.py ckpt_path=<imdb run> input=reviews/ output=reviews.json          # .txt reviews
  python scripts/predict.py ckpt_path=<table run> input=new_rows.csv                         # feature columns

Rebuilds the model and the preprocessing of its training data from the checkpoint (images resized and normalised,
reviews tokenised with the training vocabulary, table rows scaled with the training rows' statistics), and writes
one row per input to `output=`: CSV, or JSON with .json. A classifier's row has the predicted class, its
probability and each class's probability; a regressor's the predicted targets in their own units. Generators
draw with scripts/sample.py (`output_dir=` writes each sample), language models with scripts/generate.py,
sequence-to-sequence models with scripts/translate.py.
"""

import csv
import json
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import check_output_path, guarded

log = logging.getLogger("dlbook.predict")
register_resolvers()


def predict(cfg: DictConfig) -> list[dict]:
    import torch
    from hydra.core.hydra_config import HydraConfig

    from dlbook.assembly import restore_task
    from dlbook.errors import DlbookError, check_count
    from dlbook.tasks.classification import ClassificationTask
    from dlbook.tasks.regression import RegressionTask
    from dlbook.utils.checkpoints import resolve_checkpoint

    check_count("batch_size", cfg.batch_size)
    check_output_path("output", cfg.output, suffixes=(".csv", ".json"))
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, HydraConfig.get().runtime.output_dir)
    task, datamodule, choices = restore_task(ckpt_path, "predict.py")
    if not isinstance(task, (ClassificationTask, RegressionTask)) or task.data_spec.kind == "time_series":
        raise DlbookError(f"ckpt_path={ckpt_path} holds model={choices.get('model')} on data={choices.get('data')}; "
                          f"predict.py takes classifiers and regressors of images, reviews and table rows. "
                          f"Generators: scripts/sample.py; language models: scripts/generate.py; "
                          f"sequence-to-sequence models: scripts/translate.py.")
    names, inputs = read_inputs(Path(cfg.input).expanduser(), task, datamodule)
    task.eval()
    with torch.no_grad():
        outputs = torch.cat([task(batch.to(task.device)).float().cpu() for batch in inputs.split(cfg.batch_size)])
    rows = [{"input": name, **fields} for name, fields in zip(names, describe(task, outputs))]
    write_rows(rows, Path(cfg.output))
    log.info(f"Wrote {len(rows)} predictions of model={choices.get('model')} from {ckpt_path} to {cfg.output}")
    return rows


def read_inputs(path: Path, task, datamodule):
    """(a name per input, the inputs as the model takes them), by the kind of data the model was trained on."""
    from dlbook.data.spec import ImageSpec, TabularSpec, TokenSpec
    from dlbook.errors import DlbookError

    if not path.exists():
        raise DlbookError(f"input={path} does not exist: give a file, or a folder of them.")
    spec = task.data_spec
    if isinstance(spec, ImageSpec):
        from dlbook.data.image_folder import read_image_inputs

        return read_image_inputs(path, spec, datamodule)
    if isinstance(spec, TokenSpec) and hasattr(datamodule, "encode_texts"):
        files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
        if not files:
            raise DlbookError(f"input={path} holds no .txt file: a text classifier reads one review a file.")
        from dlbook.data.imdb import read_reviews, tokenize

        texts = read_reviews(files)
        wordless = next((file for file, text in zip(files, texts) if not tokenize(text)), None)
        if wordless is not None:  # it would be classified from padding alone
            raise DlbookError(f"{wordless} holds no words: a text classifier reads one review a file.")
        return [str(file) for file in files], datamodule.encode_texts(texts)
    if isinstance(spec, TabularSpec):
        return read_table_rows(path, spec, datamodule)
    raise DlbookError(f"predict.py does not read inputs for {spec.describe()} data.")


def read_table_rows(path: Path, spec, datamodule):
    """A CSV file's rows of the training feature columns (by name, any order; other columns are ignored),
    scaled with the training rows' statistics; each named by its line in the file."""
    import torch

    from dlbook.errors import DlbookError

    if path.is_dir():
        raise DlbookError(f"input={path} is a folder: a table model reads the rows of one CSV file.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(file)
            rows = [(reader.line_num, row) for row in reader]  # blank lines are skipped, so count them here
            columns = reader.fieldnames or ()
    except UnicodeDecodeError as error:
        raise DlbookError(f"input={path} is not UTF-8 text (byte {error.start}: {error.reason}): write the CSV "
                          f"file as UTF-8.") from None
    missing = [name for name in spec.feature_names if name not in columns]
    if missing:
        raise DlbookError(f"input={path} lacks the feature columns {', '.join(missing)}; the model reads "
                          f"{', '.join(spec.feature_names)} (a header row names them).")
    if not rows:
        raise DlbookError(f"input={path} has a header row but no rows to predict for.")
    values = []
    for number, row in rows:
        bad = next((name for name in spec.feature_names if not is_number(row[name])), None)
        if bad is not None:
            problem = (f"{bad} is missing: the line has fewer fields than the header" if row[bad] is None
                       else f"{bad}={row[bad]!r} is not a finite number")
            raise DlbookError(f"Line {number} of {path}: {problem}.")
        values.append([float(row[name]) for name in spec.feature_names])
    datamodule.setup("fit")  # the training rows' statistics
    scaling = datamodule.scaling
    features = (torch.tensor(values, dtype=torch.float32) - scaling.feature_offset) / scaling.feature_scale
    return [f"{path.name}:{number}" for number, _ in rows], features


def is_number(text: str | None) -> bool:
    """Whether a field is a finite number: None (a short row's missing field), nan and inf are not."""
    from dlbook.data.parsing import finite_number

    return text is not None and finite_number(text) is not None


def describe(task, outputs) -> list[dict]:
    """Each input's prediction: the class, its probability and each class's; or the targets in their units."""
    import torch

    from dlbook.tasks.classification import ClassificationTask

    if isinstance(task, ClassificationTask):
        names = task.class_names
        if task.binary:
            positive = torch.sigmoid(outputs[:, 0])
            probabilities = torch.stack([1 - positive, positive], dim=1)
        else:
            probabilities = outputs.softmax(dim=1)
        best = probabilities.argmax(dim=1)
        return [{"prediction": names[index], "probability": round(row[index].item(), 6),
                 **{f"p_{name}": round(value, 6) for name, value in zip(names, row.tolist())}}
                for index, row in zip(best.tolist(), probabilities)]
    spec = task.data_spec
    mean, std = torch.tensor(spec.target_mean or [0.0]), torch.tensor(spec.target_std or [1.0])
    values = outputs * std + mean
    names = spec.target_names or tuple(f"target_{i}" for i in range(values.shape[1]))
    return [{name: round(value, 6) for name, value in zip(names, row.tolist())} for row in values]


def write_rows(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=2) + "\n")
        return
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
def main(cfg: DictConfig) -> None:
    guarded(predict, cfg)


if __name__ == "__main__":
    main()
