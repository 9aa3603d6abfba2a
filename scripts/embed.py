"""Look at the vectors of a trained model (model=word2vec, doc2vec: word vectors, or document vectors with
kind=documents; a classifier's penultimate-layer features; an autoencoder's codes of test images):

  python scripts/embed.py ckpt_path=outputs/train/runs/<timestamp> query=[king,queen] k=10
  python scripts/embed.py ckpt_path=<run> analogy="king - man + woman"
  python scripts/embed.py ckpt_path=<run> export=true projection=tsne   # vectors.tsv, metadata.tsv, a 2-D map
  python scripts/embed.py ckpt_path=<run> kind=documents query=[3]       # doc2vec: documents by their number

Rebuilds the task from the checkpoint. `query` prints each word's nearest neighbours by cosine similarity;
`analogy` "a - b + c" the words nearest to a - b + c (a, b and c left out). `export` writes vectors.tsv and
metadata.tsv, the TensorBoard / W&B embedding-projector format, to the output directory, and `projection`
(tsne, pca or null) draws the first `plot_limit` vectors in 2-D as projection.png there.
"""

import logging
import re
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import guarded

log = logging.getLogger("dlbook.embed")
register_resolvers()
PROJECTIONS = ("tsne", "pca")
ANALOGY = re.compile(r"^\s*(\S+)\s*-\s*(\S+)\s*\+\s*(\S+)\s*$")
EXPOSING = ("EmbeddingTask (model=word2vec, doc2vec: word and document vectors), ClassificationTask (the "
            "classifiers: penultimate-layer features of test samples, kind=features) and the autoencoders "
            "(codes of test images, kind=codes)")


def embed(cfg: DictConfig) -> dict:
    from hydra.core.hydra_config import HydraConfig

    from dlbook.assembly import restore_task
    from dlbook.errors import DlbookError, check_count
    from dlbook.utils.checkpoints import resolve_checkpoint

    if cfg.projection not in (None, *PROJECTIONS):
        raise DlbookError(f"projection={cfg.projection!r} is not one of {', '.join(PROJECTIONS)}, or null.")
    check_count("k", cfg.k)
    check_count("plot_limit", cfg.plot_limit)
    check_count("seed", cfg.seed, 0)
    if cfg.limit is not None:
        check_count("limit", cfg.limit, note=", or null for all the vectors")
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, str(output_dir))
    task, datamodule, choices = restore_task(ckpt_path, "embed.py")
    if not hasattr(task, "embeddings"):
        raise DlbookError(f"ckpt_path={ckpt_path} holds model={choices.get('model')} ({type(task).__name__}), "
                          f"which exposes no vectors; embed.py takes {EXPOSING}.")
    task.eval()
    kind = {} if cfg.kind is None else {"kind": cfg.kind}  # null: the model's own kind
    vectors, labels = task.embeddings(**kind, limit=cfg.limit, datamodule=datamodule)
    result = {"neighbours": {}, "analogy": None, "files": []}
    for word in cfg.query or []:
        result["neighbours"][str(word)] = neighbours(vectors, labels, [str(word)], [], cfg.k)
    if cfg.analogy:
        match = ANALOGY.match(str(cfg.analogy))
        if not match:
            raise DlbookError(f"analogy={cfg.analogy!r} is not of the form \"a - b + c\" (e.g. \"king - man + "
                              f"woman\").")
        a, b, c = match.groups()
        result["analogy"] = neighbours(vectors, labels, [a, c], [b], cfg.k)
    for name, scored in [*result["neighbours"].items(), (cfg.analogy, result["analogy"])]:
        if scored is not None:
            print(f"{name}: " + ", ".join(f"{label} {score:.3f}" for label, score in scored))
    if cfg.export:
        result["files"] += export(vectors, labels, output_dir)
    if cfg.projection:
        result["files"].append(project(vectors[:cfg.plot_limit], labels[:cfg.plot_limit], cfg.projection,
                                       output_dir / "projection.png", cfg.seed))
    for path in result["files"]:
        log.info(f"Wrote {path}")
    return result


def neighbours(vectors, labels: list[str], plus: list[str], minus: list[str], k: int) -> list[tuple[str, float]]:
    """The k labels whose vectors are nearest by cosine to sum(plus) - sum(minus) (of unit vectors), the words of
    the query left out."""
    import torch.nn.functional as F

    from dlbook.errors import DlbookError
    from dlbook.tasks.embedding import nearest_neighbours

    index = {label: i for i, label in enumerate(labels)}
    if labels and ": " in labels[0]:  # document labels "<id>: <first words>" are queried by their id
        index |= {label.split(": ", 1)[0]: i for i, label in enumerate(labels)}
    unknown = [word for word in plus + minus if word not in index]
    if unknown:
        raise DlbookError(f"{unknown} not among the {len(labels)} labelled vectors (the first: {labels[:8]}).")
    unit = F.normalize(vectors, dim=1)
    query = sum(unit[index[word]] for word in plus) - sum((unit[index[word]] for word in minus), 0 * unit[0])
    scores, indices = nearest_neighbours(vectors, query[None], k, [[index[word] for word in plus + minus]])
    return [(labels[i], round(score, 4)) for score, i in zip(scores[0].tolist(), indices[0].tolist())]


def export(vectors, labels: list[str], folder: Path) -> list[Path]:
    """vectors.tsv (one vector a line, tab-separated) and metadata.tsv (its label), as the embedding projectors
    of TensorBoard and W&B read them."""
    folder.mkdir(parents=True, exist_ok=True)
    vectors_path, metadata_path = folder / "vectors.tsv", folder / "metadata.tsv"
    vectors_path.write_text("".join("\t".join(f"{value:.6g}" for value in row) + "\n" for row in vectors.tolist()))
    metadata_path.write_text("".join(label.replace("\t", " ").replace("\n", " ") + "\n" for label in labels),
                             encoding="utf-8")
    return [vectors_path, metadata_path]


def project(vectors, labels: list[str], method: str, path: Path, seed: int) -> Path:
    """The vectors in 2-D by scikit-learn's t-SNE or PCA, each point labelled, saved as a PNG."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from dlbook.errors import DlbookError
    from dlbook.plots import new_figure

    if len(vectors) < 3:
        raise DlbookError(f"projection={method} needs 3 vectors or more; there are {len(vectors)}.")
    points = vectors.numpy()
    if method == "tsne":  # perplexity must stay below the number of points
        points = TSNE(2, perplexity=min(30.0, (len(points) - 1) / 3), init="pca", random_state=seed).fit_transform(
            points)
    else:
        points = PCA(2, random_state=seed).fit_transform(points)
    figure, axes = new_figure(9, 9)
    axes.scatter(points[:, 0], points[:, 1], s=6)
    for (x, y), label in zip(points.tolist(), labels):
        axes.annotate(label[:30], (x, y), fontsize=7)
    axes.set(title=f"{len(points)} vectors, {'t-SNE' if method == 'tsne' else 'PCA'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="embed")
def main(cfg: DictConfig) -> None:
    guarded(embed, cfg)


if __name__ == "__main__":
    main()
