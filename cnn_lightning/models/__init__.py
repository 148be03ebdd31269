"""The book's chapter 7–8 architectures, each a ``Classifier`` LightningModule, with their named blocks."""

from cnn_lightning.models.alexnet import AlexNet
from cnn_lightning.models.densenet import DenseBlock, DenseLayer, DenseNet, TransitionBlock
from cnn_lightning.models.googlenet import GoogLeNet, Inception
from cnn_lightning.models.lenet import LeNet, LeNetBN
from cnn_lightning.models.nin import NiN, NiNBlock
from cnn_lightning.models.resnet import Residual, ResNet, resnet_stage
from cnn_lightning.models.stems import stem
from cnn_lightning.models.vgg import VGG, VGGBlock
from cnn_lightning.training.classifier import Classifier

MODELS: dict[str, type[Classifier]] = {
    cls.__name__: cls for cls in (LeNet, LeNetBN, AlexNet, VGG, NiN, GoogLeNet, ResNet, DenseNet)
}

__all__ = [
    "MODELS",
    "VGG",
    "AlexNet",
    "Classifier",
    "DenseBlock",
    "DenseLayer",
    "DenseNet",
    "GoogLeNet",
    "Inception",
    "LeNet",
    "LeNetBN",
    "NiN",
    "NiNBlock",
    "ResNet",
    "Residual",
    "TransitionBlock",
    "VGGBlock",
    "resnet_stage",
    "stem",
]
