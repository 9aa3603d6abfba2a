"""Small datasets written in the real on-disk formats (IDX, CIFAR-10 pickles, image folders, text files).

The images are scikit-learn's 8x8 digits scaled up, so models trained on them can beat chance.
"""

import gzip
import pickle
import random
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# Real copies of the datasets, when they sit beside the checkout: the tests that read them skip otherwise.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def digits(size: int, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as uint8 (N, size, size, channels) and int64 labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.from_numpy(data.images).float().unsqueeze(1) * (255.0 / 16.0)
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = images.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).repeat(1, 1, 1, channels)
    return images.numpy(), data.target.astype(np.int64)


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_mnist(data_dir: Path, folder: str = "MNIST", n_test: int = 360, compress: bool = True) -> None:
    """<data_dir>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz], as torchvision stores them."""
    images, labels = digits(28)
    raw = Path(data_dir) / folder / "raw"
    for prefix, part in (("t10k", slice(0, n_test)), ("train", slice(n_test, None))):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images[part, :, :, 0], compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels[part], compress)


def write_cifar10(data_dir: Path, n_test: int = 360, protocol: int = 2) -> None:
    """<data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch}: dicts of (N, 3072) rows and label lists, in
    pickle protocol 2 as the release (newer protocols store numpy arrays through other functions)."""
    images, labels = digits(32, channels=3)
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # channel-major, as the release stores them
    folder = Path(data_dir) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_rows, train_labels = rows[n_test:], labels[n_test:]
    chunks = np.array_split(np.arange(len(train_rows)), 5)
    batches = {f"data_batch_{i + 1}": chunk for i, chunk in enumerate(chunks)}
    for name, index in batches.items():
        with open(folder / name, "wb") as f:
            pickle.dump({"data": train_rows[index], "labels": train_labels[index].tolist()}, f, protocol)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": rows[:n_test], "labels": labels[:n_test].tolist()}, f, protocol)


def write_image_folder(root: Path, classes: tuple[int, ...] = (0, 1, 7), with_test: bool = True,
                       per_class: int = 60) -> None:
    """<root>/train/<class>/*.png and optionally <root>/test/<class>/*.png of 16x16 RGB digits."""
    from PIL import Image

    images, labels = digits(16, channels=3)
    for digit in classes:
        chosen = images[labels == digit][:per_class]
        n_test = len(chosen) // 4 if with_test else 0
        for i, image in enumerate(chosen):
            split = "test" if i < n_test else "train"
            path = Path(root) / split / f"digit_{digit}" / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)


def write_unpaired_folders(root: Path, digit_a: int = 0, digit_b: int = 1, size: int = 16, per_domain: int = 64,
                           with_b: bool = True) -> None:
    """<root>/trainA/*.png of one digit and <root>/trainB/*.png of another, size x size RGB (CycleGAN's layout)."""
    from PIL import Image

    images, labels = digits(size, channels=3)
    for domain, digit in (("trainA", digit_a), ("trainB", digit_b))[:2 if with_b else 1]:
        folder = Path(root) / domain
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images[labels == digit][:per_domain]):
            Image.fromarray(image).save(folder / f"{i:04d}.png")


# Sentences of a few patterns, so that characters and words are predictable from their context.
SENTENCES = ("the cat sat on a mat . a dog ran to the park . my friend reads a book at home . we walk in the rain . "
         "she sings a song .").split(" . ")


def write_corpus(path: Path, sentences: int = 1500, seed: int = 0) -> str:
    """English-like text: short sentences drawn from a few patterns, so characters and words are predictable."""
    rng = random.Random(seed)
    lines = [rng.choice(SENTENCES) + " ." for _ in range(sentences)]
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def write_ptb(folder: Path, seed: int = 0) -> dict[str, list[str]]:
    """ptb.{train,valid,test}.txt as Mikolov's files are: one sentence a line, words separated and surrounded by
    spaces, rare words already <unk>."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split, lines in (("train", 1200), ("valid", 150), ("test", 150)):
        sentences = [rng.choice(SENTENCES).replace("park", rng.choice(["park", "<unk>"])) for _ in range(lines)]
        (folder / f"ptb.{split}.txt").write_text("".join(f" {sentence} \n" for sentence in sentences))
        splits[split] = [word for sentence in sentences for word in [*sentence.split(), "<eos>"]]
    return splits


# Reviews whose sentiment words are plain, so that a small classifier tells them apart.
POSITIVE = ("great", "wonderful", "superb", "moving", "brilliant", "delightful")
NEGATIVE = ("awful", "boring", "dreadful", "terrible", "dull", "clumsy")
NEUTRAL = ("the", "film", "plot", "actor", "scene", "story", "camera", "music", "and", "was", "a", "of", "it")


def write_reviews(data_dir: Path, split: str = "train", per_class: int = 40, seed: int = 0) -> None:
    """<data_dir>/aclImdb/<split>/{pos,neg}/<id>_<rating>.txt: a dozen neutral words, three of the class's
    sentiment words, an HTML line break and punctuation, and a word of the review's own (critic<n>)."""
    generator = random.Random(seed)
    for label, (name, words) in enumerate((("neg", NEGATIVE), ("pos", POSITIVE))):
        folder = data_dir / "aclImdb" / split / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            chosen = [generator.choice(NEUTRAL) for _ in range(12)] + [generator.choice(words) for _ in range(3)]
            generator.shuffle(chosen)
            text = f"{' '.join(chosen[:7]).capitalize()}!<br /><br />{', '.join(chosen[7:])}. Critic{split}{name}{i}"
            (folder / f"{i}_{generator.randint(7, 10) if label else generator.randint(1, 4)}.txt").write_text(text)


# Three topics whose words share sentences only with their own topic's words and a few common ones.
TOPICS = {"animals": ("cat", "dog", "horse", "cow", "sheep", "goat", "pig", "duck"),
          "vehicles": ("car", "truck", "bus", "train", "bike", "van", "tram", "ship"),
          "food": ("bread", "cheese", "apple", "soup", "rice", "cake", "pear", "fish")}
COMMON = ("the", "a", "and", "with", "of", "saw")


def write_topic_corpus(path: Path, documents: int = 150, seed: int = 0) -> list[str]:
    """One document a line, each of three sentences ('.'-separated) of one topic's words mixed with common words;
    returns each line's topic."""
    rng = random.Random(seed)
    lines, topics = [], []
    for _ in range(documents):
        topic = rng.choice(sorted(TOPICS))
        sentences = [" ".join(rng.choice(TOPICS[topic]) if rng.random() < 0.6 else rng.choice(COMMON)
                              for _ in range(8)) for _ in range(3)]
        lines.append(". ".join(sentences).capitalize() + ".")
        topics.append(topic)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return topics


# English -> French, word by word but for the verb's person and the colour, which follows its noun in French.
PAIR_SUBJECTS = (("I", "je", 0), ("you", "tu", 1), ("he", "il", 2), ("she", "elle", 2), ("we", "nous", 3),
                 ("they", "ils", 4))
PAIR_VERBS = (("see", ("vois", "vois", "voit", "voyons", "voient")),
              ("like", ("aime", "aimes", "aime", "aimons", "aiment")),
              ("want", ("veux", "veux", "veut", "voulons", "veulent")))
PAIR_NOUNS = (("cat", "le chat"), ("dog", "le chien"), ("car", "la voiture"), ("house", "la maison"),
              ("book", "le livre"))
PAIR_COLOURS = (("red", "rouge"), ("black", "noir"), ("green", "vert"))


def write_sentence_pairs(path: Path, pairs: int = 600, seed: int = 0) -> list[tuple[str, str]]:
    """A Tatoeba export as manythings.org ships it (fra.txt): English<TAB>French<TAB>attribution, one pair a line,
    sentences capitalised and punctuated. The colour, when there is one, comes after its noun in French."""
    rng = random.Random(seed)
    written = []
    for number in range(pairs):
        (subject, sujet, person), (verb, forms), (noun, nom) = (rng.choice(PAIR_SUBJECTS), rng.choice(PAIR_VERBS),
                                                                rng.choice(PAIR_NOUNS))
        colour, couleur = rng.choice(PAIR_COLOURS) if rng.random() < 0.5 else ("", "")
        verb = verb + "s" if person == 2 else verb
        english = " ".join(word for word in (subject, verb, "the", colour, noun) if word) + "."
        french = " ".join(word for word in (sujet, forms[person], nom, couleur) if word) + "."
        written.append((english[0].upper() + english[1:], french[0].upper() + french[1:]))
    lines = [f"{english}\t{french}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{2 * i + 1} (a) & #{2 * i + 2} (b)"
             for i, (english, french) in enumerate(written)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


def write_parallel_text(folder: Path, seed: int = 0, with_vocabularies: bool = True) -> dict[str, list[tuple[str, str]]]:
    """tensorflow/nmt's layout (its IWSLT'15 files): {train,tst2012,tst2013}.{en,fr}, one tokenised sentence a line,
    line i of one language the translation of line i of the other, and vocab.{en,fr} (its <unk>, <s>, </s> first,
    then a word a line)."""
    folder.mkdir(parents=True, exist_ok=True)
    splits = {}
    for offset, (prefix, pairs) in enumerate((("train", 300), ("tst2012", 40), ("tst2013", 40))):
        written = write_sentence_pairs(folder / "pairs.tmp", pairs=pairs, seed=seed + offset)
        tokenised = [tuple(" ".join(sentence[:-1].split() + ["."]) for sentence in pair) for pair in written]
        for index, language in enumerate(("en", "fr")):
            (folder / f"{prefix}.{language}").write_text("".join(pair[index] + "\n" for pair in tokenised),
                                                         encoding="utf-8")
        splits[prefix] = tokenised
    (folder / "pairs.tmp").unlink()
    if with_vocabularies:
        for index, language in enumerate(("en", "fr")):
            words = dict.fromkeys(word for pair in splits["train"] for word in pair[index].split())
            (folder / f"vocab.{language}").write_text("\n".join(["<unk>", "<s>", "</s>", *words]) + "\n")
    return splits
