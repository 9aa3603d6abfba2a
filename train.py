"""Train a model: `python train.py model=lenet5 data=mnist`. The logic lives in dlbook/train.py."""

from dlbook.train import main

if __name__ == "__main__":
    main()
