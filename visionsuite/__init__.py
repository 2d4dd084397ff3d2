"""visionsuite: Keras 3 multi-task vision pipelines that export to quantized TFLite."""

__version__ = "0.1.0"
