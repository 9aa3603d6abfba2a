"""Generate text with a trained language model (model=char_rnn, word_lm):

  python scripts/generate.py ckpt_path=outputs/train/runs/<timestamp> prompt="ROMEO:" length=500
  python scripts/generate.py ckpt_path=<run> temperature=0        # greedy
  python scripts/generate.py ckpt_path=<run> top_k=10 seed=3      # sampled from the 10 most likely tokens

Rebuilds the net and its vocabulary from the checkpoint, prints the prompt and its continuation and writes them
to `output=`. Sampling is seeded (`seed=`): the same checkpoint and settings give the same text.
"""

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import check_output_path, guarded

log = logging.getLogger("dlbook.generate")
register_resolvers()


def generate(cfg: DictConfig) -> str:
    import torch
    from hydra.core.hydra_config import HydraConfig

    from dlbook.assembly import restore_task
    from dlbook.data.text import decode, encode, start_token
    from dlbook.errors import DlbookError, check_count, check_number
    from dlbook.utils.checkpoints import resolve_checkpoint

    check_count("length", cfg.length, 0)
    check_number("temperature", cfg.temperature, 0, note=" (0: greedy)")
    if cfg.top_k is not None:
        check_count("top_k", cfg.top_k, note=", or null for the whole vocabulary")
    check_count("seed", cfg.seed, 0)
    check_output_path("output", cfg.output)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, HydraConfig.get().runtime.output_dir)
    task, _, choices = restore_task(ckpt_path, "generate.py")
    if not hasattr(task, "generate"):
        raise DlbookError(f"ckpt_path={ckpt_path} holds model={choices.get('model')}, which does not generate "
                          f"text; generate.py takes language models (model=char_rnn, word_lm).")
    spec = task.data_spec
    prompt = encode(spec, str(cfg.prompt)) if cfg.prompt else torch.tensor([start_token(spec)])
    ids = task.generate(prompt, cfg.length, cfg.temperature, cfg.top_k, torch.Generator().manual_seed(cfg.seed))
    text = decode(spec, ids)
    Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.output).write_text(text + "\n", encoding="utf-8")
    print(text)
    log.info(f"Wrote {cfg.length} tokens of model={choices.get('model')} from {ckpt_path} to {cfg.output}")
    return text


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="generate")
def main(cfg: DictConfig) -> None:
    guarded(generate, cfg)


if __name__ == "__main__":
    main()
