"""Documents as count and tf-idf rows (data=bag_of_words) for table models."""

import pytest
import torch

from dlbook.data.bag_of_words import vectorizer
from dlbook.errors import DlbookError
from dlbook.train import train
from tests.datasets import write_reviews

# Four documents whose five most frequent words (twice each) occur in 2, 2, 2, 1 and 1 of them, the document
# frequencies of the DL Workshop's ex. 4.04 text, for which the book prints idf [1.51, 1.51, 1.51, 1.92, 1.92].
DOCUMENTS = ["Sun, rain, bright.", "Rain and snow; wind, wind, cold!", "sun fog fog warm", "snow late"]


def test_the_workshop_s_idf():
    tfidf = vectorizer("tfidf", max_features=5).fit(DOCUMENTS)
    assert sorted(tfidf.vocabulary_) == ["fog", "rain", "snow", "sun", "wind"]
    idf = {word: round(float(value), 2) for word, value in zip(tfidf.get_feature_names_out(), tfidf.idf_)}
    assert idf == {"rain": 1.51, "snow": 1.51, "sun": 1.51, "fog": 1.92, "wind": 1.92}  # ln(5/3)+1, ln(5/2)+1
    rows = tfidf.transform(DOCUMENTS).toarray()
    assert abs((rows ** 2).sum(axis=1) - 1).max() < 1e-6  # each row of unit length
    counts = vectorizer("count", max_features=5).fit_transform(DOCUMENTS).toarray()
    assert counts.sum(axis=0).tolist() == [2, 2, 2, 2, 2]


@pytest.fixture
def reviews(tmp_path):
    write_reviews(tmp_path / "data", per_class=60)
    return ["data=bag_of_words", "data.download=false", f"data.root={tmp_path / 'data' / 'aclImdb' / 'train'}"]


@pytest.mark.parametrize("weighting", ["tfidf", "count"])
def test_logistic_regression_reads_the_sentiment_words(run_config, reviews, weighting):
    metrics, objects = train(run_config([*reviews, f"data.weighting={weighting}", "model=logistic_regression",
                                         "trainer.max_epochs=15", "optimizer.lr=0.1",
                                         "data.batch_size=16"]))
    assert metrics["test/acc"] > 0.85  # chance is 0.5
    spec = objects["datamodule"].spec
    assert {"great", "awful"} <= set(spec.feature_names) and spec.target_names == ("neg", "pos")
    assert "br" not in spec.feature_names  # the reviews' <br /> tags are not words


def test_the_vocabulary_comes_from_the_training_documents(run_config, reviews):
    datamodule = train(run_config([*reviews, "model=logistic_regression", "trainer.max_epochs=1",
                                   "data.max_features=null"]))[1]["datamodule"]
    words = set(datamodule.spec.feature_names)
    # Each review ends in a word of its own (critic<split><class><i>): the held-out reviews' are unknown.
    critics = {word for word in words if word.startswith("critic")}
    assert 0 < len(critics) == len(datamodule.data_train) + len(datamodule.data_val)
    assert torch.equal(datamodule.data_test.tensors[0].sum(dim=1) > 0, torch.ones(len(datamodule.data_test),
                                                                                   dtype=torch.bool))


def test_bad_settings_are_refused(run_config, reviews, tmp_path):
    with pytest.raises(DlbookError, match=r"data.weighting='idf' is not one of count, binary, tfidf"):
        train(run_config([*reviews, "data.weighting=idf", "model=logistic_regression"]))
    (tmp_path / "one" / "pos").mkdir(parents=True)
    (tmp_path / "one" / "pos" / "a.txt").write_text("fine")
    with pytest.raises(DlbookError, match="has 1 class folder"):
        train(run_config([*reviews, f"data.root={tmp_path / 'one'}", "model=logistic_regression"]))


def test_the_reviews_are_downloaded_checked_against_the_archive_s_md5(run_config, tmp_path, monkeypatch):
    from dlbook.assembly import build_datamodule
    from dlbook.data import bag_of_words
    from dlbook.data.imdb import MD5, URL

    asked = []

    def fetch(url, folder, md5):  # the checked archive, extracted
        asked.append((url, md5))
        write_reviews(folder, per_class=5)

    monkeypatch.setattr(bag_of_words, "download_archive", fetch)
    datamodule = build_datamodule(run_config(["data=bag_of_words"]))  # it downloads what is missing
    datamodule.setup("fit")
    assert asked == [(URL, MD5)]
    assert datamodule.spec.target_names == ("neg", "pos")


def test_missing_reviews_name_their_folder_once(run_config, tmp_path):
    from dlbook.assembly import build_datamodule
    from dlbook.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError) as refused:
        build_datamodule(run_config(["data=bag_of_words", "data.download=false"]))
    assert f"Expected layout: {tmp_path / 'data' / 'aclImdb' / 'train'}/<class>/<document>.txt." in str(refused.value)
