"""C++ notices written to file descriptor 2 are held back, unless the block fails."""

import os

import pytest

from visionsuite.quiet import native_notices_held


def test_notices_of_a_block_that_succeeds_are_dropped(capfd, monkeypatch):
    monkeypatch.delenv("VISIONSUITE_DEBUG", raising=False)
    with native_notices_held():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_notices_of_a_block_that_fails_reach_stderr(capfd, monkeypatch):
    monkeypatch.delenv("VISIONSUITE_DEBUG", raising=False)
    with pytest.raises(RuntimeError):
        with native_notices_held():
            os.write(2, b"error: op not supported\n")
            raise RuntimeError("conversion failed")
    assert "error: op not supported" in capfd.readouterr().err


def test_debug_lets_notices_through(capfd, monkeypatch):
    monkeypatch.setenv("VISIONSUITE_DEBUG", "1")
    with native_notices_held():
        os.write(2, b"notice\n")
    assert capfd.readouterr().err == "notice\n"


def _onednn_setting_after_import(environment: dict) -> str:
    """TF_ENABLE_ONEDNN_OPTS as a fresh Python sees it after importing visionsuite."""
    import subprocess
    import sys

    code = "import os, visionsuite; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


def test_importing_visionsuite_turns_onednn_on_unless_the_user_chose():
    # TensorFlow alone leaves oneDNN off on AVX2-only CPUs, where the U-Net trains 1.7x slower
    environment = {key: value for key, value in os.environ.items()
                   if key != "TF_ENABLE_ONEDNN_OPTS"}
    assert _onednn_setting_after_import(environment) == "1"
    assert _onednn_setting_after_import({**environment, "TF_ENABLE_ONEDNN_OPTS": "0"}) == "0"
