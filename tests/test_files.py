"""Atomic writes (whisper_lab/files.py) leave the process's state alone.

The recorder saves from Gradio's worker threads while other threads create files:
a write that set the umask to 0 for a moment would make their files world-writable.
"""

from __future__ import annotations

import os
import stat

from whisper_lab import files


def test_atomic_writes_read_the_umask_without_setting_it(tmp_path, monkeypatch):
    mask = os.umask(0o027)
    try:
        def refuse(_mask):
            raise AssertionError("os.umask was called: it changes the umask of every thread")

        monkeypatch.setattr(os, "umask", refuse)
        with files.atomic_file(tmp_path / "speech.wav") as tmp:
            tmp.write_bytes(b"RIFF")
        with files.atomic_dir(tmp_path / "model") as folder:
            (folder / "a.onnx").write_bytes(b"")
        monkeypatch.undo()
    finally:
        os.umask(mask)
    # the files still get the usual permissions under the umask in force (0o027 here)
    assert stat.S_IMODE((tmp_path / "speech.wav").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o750


def test_one_reading_of_the_thread_setting_for_every_step(monkeypatch):
    import pytest

    from whisper_lab.errors import LabError
    from whisper_lab.onnx_files import threads_from_environment

    for value, threads in (("", None), ("0", None), ("2", 2)):  # 0, as ONNX Runtime's own 0: every core
        monkeypatch.setenv("WHISPER_LAB_THREADS", value)
        assert threads_from_environment() == threads
    monkeypatch.setenv("WHISPER_LAB_THREADS", "two")
    with pytest.raises(LabError, match="whole number"):
        threads_from_environment()
