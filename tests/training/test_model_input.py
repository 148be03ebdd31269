"""A data module's batch goes straight into the model, as the book's ``net(X)`` takes its loader's batch: uint8
images as the loaders hand them out are prepared as the data module prepares them for training, bit for bit."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from cnn_lightning.data.datamodule import FashionMNISTDataModule
from cnn_lightning.models import LeNet, ResNet


def test_a_loader_batch_goes_straight_into_the_model(data_dir: Path) -> None:
    """uint8 ``[B, 28, 28]`` (or ``[B, 1, 28, 28]``) from a loader gives the logits of the batch the data module
    prepares (resized to 32 px, scaled, NHWC), and a float ``[B, 28, 28]`` gets its channel."""
    data = FashionMNISTDataModule(data_dir=str(data_dir), resize=32, eval_batch_size=8)
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    model = ResNet(input_size=32, channels_last=True).eval()
    model.channels_last = True  # as setup() makes it
    with torch.no_grad():
        prepared = model(data.on_after_batch_transfer(batch, 0)[0])
        assert batch[0].dtype == torch.uint8 and batch[0].shape == (8, 28, 28)
        assert torch.equal(model(batch[0]), prepared) and torch.equal(model(batch[0].unsqueeze(1)), prepared)
        small = LeNet().eval()
        floats = batch[0].float() / 255
        assert torch.equal(small(floats), small(floats.unsqueeze(1)))


def test_raw_images_are_standardized_as_the_data_module_trains_them(data_dir: Path, tmp_path: Path) -> None:
    """After a fit on standardized images (``normalize=True``), raw images are standardized with the statistics the
    model trained with, as its validation batches were."""
    data = FashionMNISTDataModule(data_dir=str(data_dir), batch_size=32, normalize=True)
    model = LeNet()
    trainer = L.Trainer(fast_dev_run=True, accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(model, datamodule=data)
    images, labels = next(iter(data.val_dataloader()))
    with torch.no_grad():
        assert torch.equal(model.eval()(images), model(data.on_after_batch_transfer((images, labels), 0)[0]))
        assert not torch.equal(model(images), model(images.float().div(255).unsqueeze(1)))  # not merely scaled
