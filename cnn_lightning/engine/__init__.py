"""The speed engine, apart from the model: several optimizer steps of the model's own ``training_step`` per Lightning
batch through a Lightning ``Strategy`` (``ChunkedSteps``, the CLI's default on one device; ``"chunked_steps"`` in
Lightning's strategy registry), each full chunk optionally replayed from one CUDA graph, and the rules that keep every
hook a user overrides called as Lightning's own loop calls it (``why_not_chunked``)."""

from cnn_lightning.engine.chunk_graph import ChunkGraph, why_not_graphed
from cnn_lightning.engine.chunked_steps import (
    DEFAULT_STEPS_PER_BATCH,
    Chunk,
    ChunkedLoader,
    ChunkedSteps,
    examples_in,
    passed_multiple,
)
from cnn_lightning.engine.exactness import hook_seeing_batches, why_not_chunked

__all__ = [
    "DEFAULT_STEPS_PER_BATCH",
    "Chunk",
    "ChunkGraph",
    "ChunkedLoader",
    "ChunkedSteps",
    "examples_in",
    "hook_seeing_batches",
    "passed_multiple",
    "why_not_chunked",
    "why_not_graphed",
]
