"""Where recordings go: --output, and one private temporary folder that is gone once the recorder stops.

Gradio keeps every upload and every file it serves (the download button's copy
of speech.wav, the figure) in its temporary folder. These tests give the real
script a temporary folder of their own (TMPDIR) and look at everything in it
while the recorder runs and after it stops, however it is stopped.
"""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest
from recorder_hostile_audio import jfk_file
from recorder_process import Recorder, api_client, free_port, save_through_api, started


def start(tmp_path: Path, temp: Path) -> tuple[Recorder, int]:
    port = free_port()
    recorder = Recorder("--no-share", "--port", str(port), "--output", str(tmp_path / "out" / "speech.wav"),
                        env={"TMPDIR": str(temp)})
    started(recorder)
    return recorder, port


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["Ctrl+C", "SIGTERM", "terminal closed (SIGHUP)"])
def test_recordings_stay_in_output_and_a_private_folder_removed_at_stop(tmp_path, stop_signal):
    temp = tmp_path / "tmp"
    temp.mkdir()
    recorder, port = start(tmp_path, temp)
    try:
        upload = jfk_file(tmp_path / "take.wav", rate=48_000, channels=2)
        status, download = save_through_api(api_client(f"http://127.0.0.1:{port}"), upload)
        assert status.startswith("Saved speech.wav: 11.0 s"), status
        saved = (tmp_path / "out" / "speech.wav").read_bytes()

        # While it runs: everything the server keeps is inside one folder only the student can open.
        kept = list(temp.iterdir())
        assert len(kept) == 1 and kept[0].is_dir(), kept
        private = kept[0]
        assert stat.S_IMODE(private.stat().st_mode) == 0o700, oct(private.stat().st_mode)
        copies = [path for path in files_under(temp) if path.read_bytes() == saved]
        assert copies, "the download button's copy of speech.wav should be in the private folder"
        assert Path(download["path"]).resolve().is_relative_to(private.resolve())
        uploads = [path for path in files_under(temp) if path.read_bytes() == upload.read_bytes()]
        assert uploads and all(path.is_relative_to(private) for path in uploads)
    finally:
        recorder.proc.send_signal(stop_signal)
        try:
            recorder.proc.wait(timeout=30)
        finally:
            recorder.stop()

    # Stopped: the private folder is gone, speech.wav is the only file left.
    assert list(temp.iterdir()) == [], files_under(temp)
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "speech.wav"]


def test_a_killed_recorders_folder_is_removed_by_the_next_start(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    killed, port = start(tmp_path, temp)
    try:
        status, _ = save_through_api(api_client(f"http://127.0.0.1:{port}"), jfk_file(tmp_path / "a.wav", 44_100, 1))
        assert status.startswith("Saved"), status
    finally:
        killed.proc.kill()  # SIGKILL: no chance to clean up
        killed.proc.wait(timeout=30)
    left = list(temp.iterdir())
    assert len(left) == 1 and files_under(left[0]), "a killed recorder leaves its folder behind"
    # A folder of another program in the same temporary folder is left alone.
    other = temp / "someone-elses-folder"
    other.mkdir()

    recorder, _ = start(tmp_path, temp)
    try:
        assert not left[0].exists(), "the next start should remove the killed recorder's recordings"
        assert other.exists()
        assert len([path for path in temp.iterdir() if path != other]) == 1  # its own, new folder
    finally:
        recorder.stop()
    assert list(temp.iterdir()) == [other]
    assert os.access(other, os.W_OK)
