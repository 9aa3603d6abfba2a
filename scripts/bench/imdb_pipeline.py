"""IMDB input pipeline: what tokenising costs once, and the share of a training epoch the batches take after.

Random reviews in the Stanford layout (aclImdb/train/{pos,neg}/<id>_<rating>.txt); the first setup reads,
tokenises and caches them, a second reads the cache. Then one epoch of model=rnn_classifier through train.py is
timed, and the same epoch's batches are drawn from the datamodule without the model: their time over the epoch's
is the pipeline's share.

    python scripts/bench/imdb_pipeline.py
    python scripts/bench/imdb_pipeline.py --reviews 25000 model.net.cell=gru
"""

import argparse
import os
import random
import time

from common import scratch_dir
from iteration_timer import timed_train

WORDS = [f"word{i}" for i in range(20000)]


def write_reviews(data_dir, reviews: int, words: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for index in range(reviews):
        label = ("neg", "pos")[index % 2]
        folder = data_dir / "aclImdb" / "train" / label
        folder.mkdir(parents=True, exist_ok=True)
        text = " ".join(rng.choices(WORDS, k=words)) + "<br /><br />" + " ".join(rng.choices(WORDS, k=words // 4))
        (folder / f"{index}_{7 if label == 'pos' else 2}.txt").write_text(text)


def setup_seconds(data_dir, cache_dir) -> float:
    from dlbook.data.imdb import IMDBDataModule

    start = time.perf_counter()
    IMDBDataModule(data_dir=str(data_dir), cache_dir=str(cache_dir)).setup("fit")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, default=5000)
    parser.add_argument("--words", type=int, default=230, help="words a review, about the real mean")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for the timed run")
    args = parser.parse_args()

    os.environ.setdefault("WANDB_MODE", "offline")
    work = scratch_dir()
    write_reviews(work / "data", args.reviews, args.words)
    first, cached = setup_seconds(work / "data", work / "cache"), setup_seconds(work / "data", work / "cache")
    overrides = ["model=rnn_classifier", "data=imdb", f"paths.data_dir={work / 'data'}", f"paths.root_dir={work}",
                 f"paths.cache_dir={work / 'cache'}", "trainer.max_epochs=1", "test=false",
                 "++trainer.limit_val_batches=0", "logger=csv", "extras.print_config=false", *args.overrides]
    objects, timer = timed_train(overrides, work / "run")
    datamodule = objects["datamodule"]
    batches = objects["trainer"].num_training_batches
    epoch = (batches - timer.warmup) / timer.rate
    start = time.perf_counter()
    for index, batch in enumerate(datamodule.train_dataloader()):
        if index + 1 == timer.warmup:
            start = time.perf_counter()
    pipeline = time.perf_counter() - start
    print(f"{'reviews':>8} {'tokenise+cache s':>17} {'from cache s':>13} {'epoch s':>8} {'batches s':>10} "
          f"{'pipeline share':>15}")
    print(f"{args.reviews:>8} {first:>17.3f} {cached:>13.3f} {epoch:>8.3f} {pipeline:>10.4f} "
          f"{pipeline / epoch:>15.4f}", flush=True)


if __name__ == "__main__":
    main()
