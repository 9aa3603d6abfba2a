"""Translate text with a trained sequence-to-sequence model (model=seq2seq, transformer):

  python scripts/translate.py ckpt_path=outputs/train/runs/<timestamp> text="She likes the red car."
  python scripts/translate.py ckpt_path=<run> text="[Go away.,I see the cat.]" beam_size=5

Rebuilds the net and its vocabularies from the checkpoint, tokenises each text as the training sources were (words
it never saw read as <unk>), decodes greedily or with beam search, prints the translations and writes them to
`output=` (source<TAB>translation lines), with the attention of each beside it (<output name>_attention.png).
"""

import logging

import hydra
from omegaconf import DictConfig, ListConfig

from dlbook.utils.config import config_dir, register_resolvers
from dlbook.utils.entry import check_output_path, guarded

log = logging.getLogger("dlbook.translate")
register_resolvers()


def translate(cfg: DictConfig) -> list[str]:
    import torch
    from hydra.core.hydra_config import HydraConfig

    from dlbook.assembly import restore_task
    from dlbook.data.pairs import target_tokens
    from dlbook.errors import DlbookError, check_count, check_number
    from dlbook.tasks.seq2seq import attention_figure
    from dlbook.utils.checkpoints import resolve_checkpoint

    for key, note in (("beam_size", " (1: greedy)"), ("max_length", "")):
        if cfg[key] is not None:
            check_count(key, cfg[key], note=f"{note}, or null for the model's own")
    if cfg.length_penalty is not None:
        check_number("length_penalty", cfg.length_penalty, note=", or null for the model's own")
    output = check_output_path("output", cfg.output)
    ckpt_path = resolve_checkpoint(cfg.ckpt_path, HydraConfig.get().runtime.output_dir)
    task, datamodule, choices = restore_task(ckpt_path, "translate.py")
    if not hasattr(datamodule, "encode_sources"):
        raise DlbookError(f"ckpt_path={ckpt_path} holds model={choices.get('model')} on data={choices.get('data')}, "
                          f"which does not translate; translate.py takes sequence-to-sequence models "
                          f"(model=seq2seq, transformer).")
    if cfg.beam_size is not None:
        task.beam_size = cfg.beam_size
    if cfg.length_penalty is not None:
        task.length_penalty = cfg.length_penalty
    texts = [str(text) for text in cfg.text] if isinstance(cfg.text, ListConfig) else [str(cfg.text)]
    sources = datamodule.encode_sources(texts)
    task.eval()
    with torch.no_grad():
        decoded, _, attention = task.decode(sources.to(task.device), cfg.max_length)
    spec = task.data_spec
    translations = [spec.separator.join(target_tokens(row, spec)) for row in decoded.cpu()]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(f"{text}\t{translation}\n" for text, translation in zip(texts, translations)),
                      encoding="utf-8")
    if attention is not None:
        # named after the output, so another translation into the same folder keeps its own
        attention_figure(sources, decoded, attention, spec).savefig(output.with_name(f"{output.stem}_attention.png"),
                                                                   dpi=120)
    for text, translation in zip(texts, translations):
        print(f"{text} -> {translation}")
    log.info(f"Wrote {len(texts)} translations of model={choices.get('model')} from {ckpt_path} to {output}")
    return translations


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="translate")
def main(cfg: DictConfig) -> None:
    guarded(translate, cfg)


if __name__ == "__main__":
    main()
