"""Downloads are whole and checked or leave nothing: every datamodule that downloads does it through
dlbook.data.download, from a local server that drops the connection mid-file as a real one can, and a file already
in a dataset's place that is not the published one is warned about."""

import hashlib
import http.server
import io
import logging
import re
import tarfile
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from dlbook.data import bag_of_words, cifar10, corpus, imdb, pairs, text
from dlbook.data.download import download_archive, download_file, md5_of
from dlbook.data.idx import FashionMNISTDataModule, MNISTDataModule
from dlbook.errors import DatasetNotFoundError, DlbookError
from dlbook.utils.config import instantiate
from tests.datasets import SHARED_DATA, write_corpus, write_ptb
from tests.test_timeseries import seasonal, write_series

FAKE = b"not the published file\n" * 200
FAKE_MD5 = hashlib.md5(FAKE).hexdigest()


@pytest.fixture
def server():
    """An HTTP server on this machine serving `files` (by name; any other name gets FAKE), each announced whole in
    its Content-Length; with `cut`, the connection drops after half the body."""
    state = SimpleNamespace(files={}, cut=False, agents=[])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            state.agents.append(self.headers.get("User-Agent"))
            data = state.files.get(self.path.rsplit("/", 1)[-1], FAKE)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2] if state.cut else data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def served_datamodule(data: str, url: str, run_config, monkeypatch):
    """data=<data>, not yet prepared, with its downloads pointed at `url`."""
    overrides = {"ptb": lambda: monkeypatch.setattr(text, "PTB_URL", f"{url}/{{name}}"),
                 "text_chars": lambda: monkeypatch.setattr(text, "TINY_SHAKESPEARE_URL", f"{url}/input.txt"),
                 "text_corpus": lambda: monkeypatch.setattr(corpus, "PTB_URL", f"{url}/{{name}}"),
                 "mnist": lambda: monkeypatch.setattr(MNISTDataModule, "mirrors", (f"{url}/",)),
                 "fashion_mnist": lambda: monkeypatch.setattr(FashionMNISTDataModule, "mirrors", (f"{url}/",)),
                 "imdb": lambda: monkeypatch.setattr(imdb, "URL", f"{url}/aclImdb_v1.tar.gz"),
                 "bag_of_words": lambda: monkeypatch.setattr(bag_of_words, "IMDB_URL", f"{url}/aclImdb_v1.tar.gz"),
                 "cifar10": lambda: monkeypatch.setattr(cifar10, "URL", f"{url}/cifar-10-python.tar.gz"),
                 "translation_pairs": lambda: monkeypatch.setattr(pairs, "FRA_ENG_URL", f"{url}/fra-eng.zip"),
                 "parallel_text": lambda: monkeypatch.setattr(pairs, "IWSLT15_URL", f"{url}/")}
    overrides.get(data, lambda: None)()
    datamodule = instantiate(run_config([f"data={data}"]).data)
    if getattr(datamodule, "url", None):  # the time series and the tables from a file
        datamodule.url = f"{url}/{datamodule.url.rsplit('/', 1)[-1]}"
    return datamodule


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


REFUSED_BY_MD5 = rf"The download of .* has MD5 {FAKE_MD5}, not the published [0-9a-f]{{32}}: .*nothing was kept"


@pytest.mark.parametrize("data, other_bytes", [
    *((data, REFUSED_BY_MD5) for data in ("ptb", "text_chars", "text_corpus", "airline_passengers", "mnist",
                                          "california_housing", "imdb", "bag_of_words", "cifar10")),
    ("translation_pairs", "is no tar or zip archive .* nothing was kept"),  # an archive, with no MD5 published
    ("boston_housing", None), ("parallel_text", None)])  # plain files with no MD5 published: kept, checked as read
def test_a_download_cut_short_or_not_the_published_file_leaves_nothing(run_config, tmp_path, server, monkeypatch,
                                                                       data, other_bytes):
    datamodule = served_datamodule(data, server.url, run_config, monkeypatch)
    data_dir = tmp_path / "data"
    first = datamodule.missing_files("train")[0]
    server.cut = True
    with pytest.raises(DatasetNotFoundError) as error:
        datamodule.prepare_data()
    assert files_under(data_dir) == []  # the next run downloads again instead of training on half a file
    message = str(error.value)  # an archive is downloaded into a temporary folder beside its extracted files
    assert re.search(rf"The download of {re.escape(str(data_dir))}/\S+ from {server.url}/\S+ stopped early", message)
    assert f"Expected layout: {data_dir / first.relative_to(data_dir).parts[0]}/" in message
    if other_bytes is not None:
        server.cut = False  # whole, but other bytes than the published file's (a server that sends no length)
        with pytest.raises(DatasetNotFoundError, match=other_bytes):
            datamodule.prepare_data()
        assert files_under(data_dir) == []


def test_the_iwslt_files_already_there_are_kept_and_only_the_missing_ones_downloaded(run_config, tmp_path, server,
                                                                                     monkeypatch):
    datamodule = served_datamodule("parallel_text", server.url, run_config, monkeypatch)
    mine = tmp_path / "data" / "iwslt15_en_vi" / "train.vi"
    mine.parent.mkdir(parents=True)
    mine.write_text("một câu của tôi\n")
    datamodule.prepare_data()
    assert mine.read_text() == "một câu của tôi\n" and len(files_under(mine.parent)) == 8


def archive_of(members: dict[str, bytes], kind: str) -> bytes:
    served = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(served, "w") as zipped:
            for name, data in members.items():
                zipped.writestr(name, data)
    else:
        with tarfile.open(fileobj=served, mode="w:gz") as tarred:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tarred.addfile(info, io.BytesIO(data))
    return served.getvalue()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_an_archive_is_extracted_into_its_folder_beside_what_is_there_and_not_kept(tmp_path, server, kind):
    absolute = tmp_path / "absolute.txt"  # a member named by an absolute path lands inside the folder
    server.files[f"reviews.{kind}"] = archive_of({"aclImdb/train/pos/1_9.txt": b"good",
                                                  "aclImdb/test/neg/2_1.txt": b"bad", str(absolute): b"?"}, kind)
    folder = tmp_path / "data"
    (folder / "aclImdb" / "train").mkdir(parents=True)
    (folder / "aclImdb" / "train" / "mine.txt").write_text("a file of the user's")
    download_archive(f"{server.url}/reviews.{kind}", folder, None)
    assert sorted(files_under(tmp_path)) == sorted([folder / "aclImdb" / "test" / "neg" / "2_1.txt",
                                                    folder / "aclImdb" / "train" / "mine.txt",
                                                    folder / "aclImdb" / "train" / "pos" / "1_9.txt",
                                                    folder / absolute.relative_to("/")])
    assert sorted(path.name for path in folder.iterdir()) == ["aclImdb", absolute.parts[1]]  # no archive left


def test_an_archive_with_a_member_outside_its_folder_leaves_nothing_and_the_next_run_downloads_again(
        run_config, tmp_path, server, monkeypatch):
    batches = {f"cifar-10-batches-py/{name}": b"batch" for name in (*cifar10.TRAIN_BATCHES, "test_batch")}
    server.files["cifar-10-python.tar.gz"] = archive_of({**batches, "../planted": b"code"}, "tar.gz")
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(server.files["cifar-10-python.tar.gz"]).hexdigest())
    datamodule = served_datamodule("cifar10", server.url, run_config, monkeypatch)
    with pytest.raises(DatasetNotFoundError, match="downloading it failed .*outside the destination"):
        datamodule.prepare_data()
    assert files_under(tmp_path) == []  # the batches extracted before the planted member went too
    assert len(datamodule.missing_files("train") + datamodule.missing_files("test")) == 6


def test_a_whole_download_with_its_md5_is_kept(tmp_path, server):
    server.files["file.txt"] = FAKE
    path = tmp_path / "data" / "file.txt"
    download_file(f"{server.url}/file.txt", path, FAKE_MD5)
    assert path.read_bytes() == FAKE and files_under(tmp_path) == [path]
    assert server.agents == ["dlbook"]  # some dataset hosts refuse Python's default agent
    with pytest.raises(DlbookError, match="has MD5"):
        download_file(f"{server.url}/file.txt", path, "0" * 32)
    assert path.read_bytes() == FAKE  # a failed download leaves the file it would have replaced


@pytest.mark.skipif(not (SHARED_DATA / "PTB").is_dir(), reason="no real dataset copies beside the checkout")
@pytest.mark.parametrize("data", ["ptb", "text_chars", "text_corpus", "fashion_mnist", "airline_passengers",
                                  "sunspots", "daily_min_temperatures", "shampoo", "stocks"])
def test_the_published_files_pass_their_md5(run_config, tmp_path, server, monkeypatch, data):
    folders = ["PTB", "tinyshakespeare", "FashionMNIST/raw", "timeseries", "timeseries/stocks"]
    server.files = {path.name: path.read_bytes() for folder in folders for path in (SHARED_DATA / folder).iterdir()
                    if path.is_file()}
    datamodule = served_datamodule(data, server.url, run_config, monkeypatch)
    datamodule.prepare_data()
    downloaded = files_under(tmp_path / "data")
    assert downloaded and all(path.read_bytes() == server.files[path.name] for path in downloaded)


@pytest.mark.parametrize("data, place, write", [
    ("ptb", "PTB/ptb.train.txt", lambda path: write_ptb(path.parent)),
    ("text_chars data.batch_size=8 data.eval_batch_size=8", "tinyshakespeare/input.txt", write_corpus),
    ("text_corpus", "PTB/ptb.train.txt", write_corpus),
    ("shampoo", "timeseries/shampoo.csv", lambda path: write_series(path, seasonal(36), ("Month", "Sales"))),
], ids=["ptb", "text_chars", "text_corpus", "shampoo"])
def test_a_file_in_a_dataset_s_place_that_is_not_the_published_one_is_warned_about(run_config, tmp_path, caplog,
                                                                                  data, place, write):
    path = tmp_path / "data" / place
    write(path)
    datamodule = instantiate(run_config(f"data={data}".split()).data)
    with caplog.at_level(logging.WARNING, logger="dlbook"):
        datamodule.setup("fit")
    assert f"{path} is not the published file (MD5 {md5_of(path)}, not " in caplog.text
    assert "delete it and run again to download it whole" in caplog.text
