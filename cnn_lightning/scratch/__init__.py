"""The book's from-scratch operators — cross-correlation, convolution and pooling (D2L §7.2–7.5), batch normalization
(§8.5) — and the shape and cost arithmetic around them: by hand as the book teaches it, and on the meta device as
the models, the classifier and ``summary`` use it."""

from cnn_lightning.scratch.arithmetic import (
    conv_flops,
    conv_multiply_adds,
    conv_output_size,
    conv_output_size_symmetric,
)
from cnn_lightning.scratch.batch_norm import BatchNorm, batch_norm
from cnn_lightning.scratch.convolution import Conv2D, corr2d, corr2d_multi_in, corr2d_multi_in_out, pool2d
from cnn_lightning.scratch.shapes import flat_features, meta_state, output_shape, training_flops

__all__ = [
    "BatchNorm",
    "Conv2D",
    "batch_norm",
    "conv_flops",
    "conv_multiply_adds",
    "conv_output_size",
    "conv_output_size_symmetric",
    "corr2d",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "flat_features",
    "meta_state",
    "output_shape",
    "pool2d",
    "training_flops",
]
