"""Counting the ones of binary sequences (Advanced Deep Learning with Python, ch. 7): the seeded sequences and their
counts, the hand-written LSTM learning to count, and the book's linear RNN, which learns on a short sequence and
whose gradients explode on a long one."""

import csv

import pytest
import torch

from dlbook.assembly import build_datamodule
from dlbook.errors import DlbookError, NonFiniteLossError
from dlbook.train import train

BOOK_SEQUENCE = "[[0,0,0,0,1,0,1,0,1,0]]"  # -> 3
LONG_SEQUENCE = "[[" + ",".join(["0,0,0,0,1,0,1,0,1,0"] * 4) + "]]"  # the book's repository's 40 steps -> 12


def datamodule_of(run_config, overrides):
    datamodule = build_datamodule(run_config(["data=count_ones", *overrides]))
    datamodule.setup()
    return datamodule


def test_sequences_are_seeded_and_counted(run_config):
    datamodule = datamodule_of(run_config, ["data.num_sequences=2000", "data.test_sequences=300"])
    train_inputs, train_counts = datamodule.data_train.tensors
    test_inputs, test_counts = datamodule.data_test.tensors
    assert train_inputs.shape == (1800, 20, 1) and len(datamodule.data_val) == 200 and test_inputs.shape[0] == 300
    assert set(train_inputs.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(train_counts[:, 0], train_inputs.sum(dim=(1, 2)))
    assert torch.equal(test_counts[:, 0], test_inputs.sum(dim=(1, 2)))
    # the book's draw: each sequence's chance of a one is uniform over 1/20..1, so the counts spread widely
    assert train_counts.min() <= 1 and train_counts.max() == 20 and train_counts.std() > 4
    again = datamodule_of(run_config, ["data.num_sequences=2000", "data.test_sequences=300"])
    assert torch.equal(again.data_test.tensors[0], test_inputs)
    other = datamodule_of(run_config, ["data.num_sequences=2000", "data.test_sequences=300",
                                       "data.generation_seed=1"])
    assert not torch.equal(other.data_test.tensors[0], test_inputs)
    spec = datamodule.spec
    assert (spec.input_shape, spec.num_targets, spec.forecast) == ((20, 1), 1, False)
    assert spec == type(datamodule).fixed_spec(run_config(["data=count_ones"]).data)


def test_given_sequences_all_train(run_config):
    datamodule = datamodule_of(run_config, [f"data.sequences={BOOK_SEQUENCE}"])
    assert len(datamodule.data_val) == len(datamodule.data_test) == 0
    with pytest.raises(DlbookError, match="holds none out for testing; set test=false"):
        datamodule.test_dataloader()
    inputs, counts = datamodule.data_train.tensors
    assert inputs[0, :, 0].tolist() == [0, 0, 0, 0, 1, 0, 1, 0, 1, 0] and counts.tolist() == [[3.0]]
    assert datamodule.spec.window == 10
    with pytest.raises(DlbookError, match="data.sequences holds 2; a sequence to count ones in holds only 0s and 1s"):
        datamodule_of(run_config, ["data.sequences=[[0,1,2]]"])
    with pytest.raises(DlbookError, match="all of one length; it has 2 sequences of lengths 2, 3"):
        datamodule_of(run_config, ["data.sequences=[[0,1],[1,1,0]]"])


@pytest.mark.slow  # trains for about 15 s; test_cells.py checks the scratch LSTM against torch's in the default suite
def test_scratch_lstm_learns_to_count(run_config):
    # The book's setup, smaller: 2,000 sequences of 10 bits (book: 10,000 of 20), a faster rate for fewer steps.
    cfg = run_config(["data=count_ones", "data.num_sequences=2000", "data.test_sequences=500", "data.length=10",
                      "model=seq_regressor", "model.net.cell=lstm", "model.net.hidden_size=20",
                      "model.net.implementation=scratch", "model.net.init_range=0.3873", "model.rounded_accuracy=true",
                      "optimizer.lr=0.005", "trainer.max_epochs=6"])
    trained, _ = train(cfg)
    assert trained["test/acc"] >= 0.99
    assert trained["train/acc"] > 0.9


def losses_of(run_dir) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as file:
        return [float(row["train/loss"]) for row in csv.DictReader(file) if row["train/loss"]]


def test_linear_rnn_learns_the_short_sequence_and_explodes_on_the_long_one(run_config, tmp_path):
    book = ["model=linear_rnn", "optimizer=sgd", "optimizer.lr=5e-4", "trainer.max_epochs=150", "logger=csv",
            "callbacks=[default,parameter_values]", "test=false", "monitor=train/loss", "optimized_metric=null"]
    trained, _ = train(run_config(["data=count_ones", f"data.sequences={BOOK_SEQUENCE}", *book]))
    losses = losses_of(tmp_path / "run")
    assert losses[0] == pytest.approx(9.0)  # (U, W) = (-2, 0): the output is -2 times the last bit, 0
    assert losses[-1] < 0.05 and trained["train/acc"] == 1.0
    # the NumPy listing's weights after 150 steps (it finds a solution other than U = W = 1)
    assert trained["param/net.u"] == pytest.approx(-2.0887, abs=1e-3)
    assert trained["param/net.w"] == pytest.approx(-0.7529, abs=1e-3)

    with pytest.raises(NonFiniteLossError, match="became NaN or infinite at step 2[4-6]"):
        train(run_config(["data=count_ones", f"data.sequences={LONG_SEQUENCE}", *book], run_name="long"))
    losses = losses_of(tmp_path / "long")
    assert losses[0] == pytest.approx(144.0) and losses[23] < losses[0] and max(losses) > 1e5
