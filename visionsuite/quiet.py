"""Keeping the notices that TensorFlow's and LiteRT's C++ code prints (oneDNN, absl, the
quantizer's settings, "Created TensorFlow Lite XNNPACK delegate") off the terminal. They write
to file descriptor 2 directly, past Python's sys.stderr, so only a redirect of the descriptor
holds them back."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def native_notices_held():
    """Run the block with file descriptor 2 sent to a temporary file, dropped if the block
    succeeds and written to stderr if it raises, so that no diagnostic of a failure is lost.
    VISIONSUITE_DEBUG=1 lets everything through."""
    if os.environ.get("VISIONSUITE_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up notices (oneDNN, absl) kept off the terminal:
    TF 2.21 logs them through absl, which TF_CPP_MIN_LOG_LEVEL no longer silences."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    with native_notices_held():
        import tensorflow  # noqa: F401
