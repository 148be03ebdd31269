"""``python -m cnn_lightning`` and the ``cnn-lightning`` script."""

from cnn_lightning.host_memory import huge_pages_for_large_tensors

huge_pages_for_large_tensors()  # before anything imports torch, which reads the setting once
from cnn_lightning.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
