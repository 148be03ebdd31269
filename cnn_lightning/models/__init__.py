"""The book's chapter 7–8 architectures, each a ``Classifier`` LightningModule, with their named blocks."""

from cnn_lightning.models.alexnet import AlexNet
from cnn_lightning.models.batch_norm import LiteBatchNorm
from cnn_lightning.models.densenet import BottleneckDenseLayer, DenseBlock, DenseLayer, DenseNet, TransitionBlock
from cnn_lightning.models.googlenet import ConvBN, GoogLeNet, Inception, InceptionV3, ResidualInception
from cnn_lightning.models.lenet import LeNet, LeNetBN
from cnn_lightning.models.nin import NiN, NiNBlock
from cnn_lightning.models.resnet import Bottleneck, PreActResidual, Residual, ResNet, resnet_stage
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
    "Bottleneck",
    "BottleneckDenseLayer",
    "Classifier",
    "ConvBN",
    "DenseBlock",
    "DenseLayer",
    "DenseNet",
    "GoogLeNet",
    "Inception",
    "InceptionV3",
    "LeNet",
    "LeNetBN",
    "LiteBatchNorm",
    "NiN",
    "NiNBlock",
    "PreActResidual",
    "ResNet",
    "Residual",
    "ResidualInception",
    "TransitionBlock",
    "VGGBlock",
    "resnet_stage",
    "stem",
]
