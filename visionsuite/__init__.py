"""visionsuite: Keras 3 multi-task vision pipelines that export to quantized TFLite."""

import os as _os

__version__ = "0.1.0"

# TensorFlow runs convolutions through oneDNN by default only on CPUs with AVX512-VNNI,
# AVX512-BF16 or AMX; elsewhere (AVX2 CPUs such as AMD's Zen 3) it falls back to Eigen's
# im2col and trains the shipped U-Net 1.7x slower (benchmarks/onednn.py). Set here, before
# anything of visionsuite loads TensorFlow; TF_ENABLE_ONEDNN_OPTS=0 keeps TensorFlow's choice.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
