import pytest
from omegaconf import DictConfig

from dlbook.utils.config import compose_run as dlbook_compose_run

# Quiet, CPU-only runs; each test points paths at its own tmp dir.
TEST_OVERRIDES = ["logger=none", "extras.print_config=false", "trainer.accelerator=cpu",
                  "++trainer.enable_progress_bar=false", "++callbacks.rich_progress_bar=null",
                  "++callbacks.model_summary=null"]


def compose_run(tmp_path, overrides=(), config_name: str = "train", run_name: str = "run") -> DictConfig:
    """Compose a config as `python <config_name>.py <overrides>` would, writing into tmp_path/<run_name>."""
    defaults = TEST_OVERRIDES if config_name == "train" else ["extras.print_config=false",
                                                             "trainer.accelerator=cpu",
                                                             "++trainer.enable_progress_bar=false"]
    return dlbook_compose_run([*defaults, f"paths.root_dir={tmp_path}", f"paths.data_dir={tmp_path / 'data'}",
                               f"paths.cache_dir={tmp_path / 'cache'}",
                               *overrides], tmp_path / run_name, config_name)


@pytest.fixture
def run_config(tmp_path):
    return lambda overrides=(), **kwargs: compose_run(tmp_path, overrides, **kwargs)


def batches_in(checkpoint: dict) -> int:
    """Training batches run before a checkpoint was written: Lightning's own count, kept in its loop state."""
    return checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["processed"]
