"""Test a checkpoint: `python eval.py ckpt_path=outputs/.../checkpoints/best.ckpt`. Logic in dlbook/eval.py."""

from dlbook.eval import main

if __name__ == "__main__":
    main()
