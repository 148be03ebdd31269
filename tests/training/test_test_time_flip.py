"""Test-time flips: evaluation, prediction, the Python API and export average an image with its mirror."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from cnn_lightning import ImageClassifier
from cnn_lightning.commands.export import ExportedClassifier
from cnn_lightning.models import LeNetBN
from cnn_lightning.training.test_time_flip import flip_averaged_logits, flip_averaged_probabilities


def _model(flip: bool) -> LeNetBN:
    torch.manual_seed(0)
    return LeNetBN(activation="relu", pooling="max", init="kaiming", test_time_flip=flip).eval()


def test_the_mean_of_an_image_and_its_mirror() -> None:
    model, images = _model(True), torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        expected = (model(images).softmax(1) + model(images.flip(-1)).softmax(1)) / 2
        assert torch.allclose(flip_averaged_probabilities(model, images), expected, atol=1e-6)
        assert torch.allclose(flip_averaged_logits(model, images).softmax(1), expected, atol=1e-6)
        symmetric = torch.cat([images[..., :14], images[..., :14].flip(-1)], dim=-1)  # its own mirror
        assert torch.allclose(flip_averaged_probabilities(model, symmetric), model(symmetric).softmax(1), atol=1e-6)
        assert not torch.allclose(flip_averaged_probabilities(model, images), model(images).softmax(1), atol=1e-3)


def test_validation_test_and_predict_judge_by_both_views_training_by_one() -> None:
    flipping, plain = _model(True), _model(False)
    images, labels = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    with torch.no_grad():
        both = flip_averaged_logits(plain, images)
        assert torch.allclose(flipping.evaluation_logits(images), both, atol=1e-6)
        assert torch.equal(plain.evaluation_logits(images), plain(images))
        predicted = flipping.predict_step((images, labels), 0)
        assert torch.allclose(predicted["probability"], both.softmax(1), atol=1e-6)
        flipping.validation_step((images, labels), 0)
    loss = flipping.val_metrics.compute()["loss"]
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(both, labels).item(), rel=1e-5)
    flipping.train()
    assert torch.equal(flipping.training_step((images, labels), 0), plain.train().training_step((images, labels), 0))


def test_the_api_and_the_exported_module_flip_as_the_model_does() -> None:
    model, images = _model(True), torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    expected = ImageClassifier(model, [str(n) for n in range(10)]).probabilities(images)
    exported = ExportedClassifier(model.net, 28, test_time_flip=True).eval()
    with torch.no_grad():
        assert torch.allclose(exported(images), expected, atol=1e-6)
        assert torch.allclose(expected, flip_averaged_probabilities(model, images.float() / 255), atol=1e-6)
    plain = ImageClassifier(_model(False), [str(n) for n in range(10)]).probabilities(images)
    assert not torch.allclose(plain, expected, atol=1e-3)


def test_a_run_with_flips_logs_the_flipped_accuracy(data_dir, tmp_path) -> None:
    """Through a real Trainer: validation with flips equals the mean of the two views, evaluated by hand."""
    from cnn_lightning.data.datamodule import FashionMNISTDataModule

    L.seed_everything(0)
    model = LeNetBN(test_time_flip=True)
    data = FashionMNISTDataModule(data_dir=str(data_dir), download=False)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=2, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(model, datamodule=data)
    logged = trainer.callback_metrics["val/acc"].item()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for index, (images, labels) in enumerate(data.val_dataloader()):
            if index == 2:
                break
            both = flip_averaged_probabilities(model, images)
            correct, total = correct + (both.argmax(1) == labels).sum().item(), total + len(labels)
    assert logged == pytest.approx(correct / total)
