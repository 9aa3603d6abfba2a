import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from dlbook.utils.config import config_dir, register_resolvers

register_resolvers()

# Quiet, CPU-only runs; each test points paths at its own tmp dir.
TEST_OVERRIDES = ["logger=none", "extras.print_config=false", "trainer.accelerator=cpu",
                  "++trainer.enable_progress_bar=false", "++callbacks.rich_progress_bar=null",
                  "++callbacks.model_summary=null"]


def compose_run(tmp_path, overrides=(), config_name: str = "train", run_name: str = "run") -> DictConfig:
    """Compose a config as `python <config_name>.py <overrides>` would, writing into tmp_path/<run_name>."""
    GlobalHydra.instance().clear()
    defaults = TEST_OVERRIDES if config_name == "train" else ["extras.print_config=false",
                                                             "trainer.accelerator=cpu",
                                                             "++trainer.enable_progress_bar=false"]
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose(config_name, overrides=[*defaults, f"paths.root_dir={tmp_path}",
                                              f"paths.data_dir={tmp_path / 'data'}", *overrides],
                      return_hydra_config=True)
    output_dir = tmp_path / run_name
    output_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture
def run_config(tmp_path):
    return lambda overrides=(), **kwargs: compose_run(tmp_path, overrides, **kwargs)
