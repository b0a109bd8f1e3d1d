"""What --model accepts: the packaged default, a local folder, a hub id (cache or download)."""

from __future__ import annotations

import shutil

import pytest
from conftest import assert_one_line_error, run_script

from whisper_lab.audio.speech_data import JFK
from whisper_lab.errors import LabError
from whisper_lab.weights.model_source import resolve_model


def test_default_is_packaged_whisper_base_offline(whisper_base):
    assert whisper_base.name == "whisper-base"
    assert (whisper_base.path / "model.safetensors").is_file()
    assert (whisper_base.path / "generation_config.json").is_file()


def test_local_folder(whisper_base, tmp_path):
    folder = tmp_path / "my-whisper"
    shutil.copytree(whisper_base.path, folder)
    source = resolve_model(str(folder))
    assert source.name == "my-whisper" and source.path == folder
    result = run_script("02-whisper-huggingface.py", "--audio", JFK.path, "--model", folder)
    assert result.returncode == 0 and "fellow Americans" in result.stdout


def test_hub_cache_is_preferred_when_present(whisper_base, tmp_path, monkeypatch):
    """A hub cache holding openai/whisper-base (here: our real converted weights, laid out as the hub cache does)."""
    snapshot = tmp_path / "hub" / "models--openai--whisper-base" / "snapshots" / "0123abc"
    shutil.copytree(whisper_base.path, snapshot)
    (tmp_path / "hub" / "models--openai--whisper-base" / "refs").mkdir()
    (tmp_path / "hub" / "models--openai--whisper-base" / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    source = resolve_model()
    assert source.path == snapshot and "Hugging Face cache" in source.origin


def test_unreachable_hub_id_fails_with_advice(monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as on the lab machines, even where the hub is up
    with pytest.raises(LabError, match="cannot get openai/whisper-tiny.*--model openai/whisper-base"):
        resolve_model("openai/whisper-tiny")


def test_unreachable_hub_id_from_the_script():
    result = run_script("02-whisper-huggingface.py", "--audio", JFK.path, "--model", "openai/whisper-tiny",
                        env={"HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert_one_line_error(result, "openai/whisper-tiny", "works offline")


def test_nonsense_model_name():
    with pytest.raises(LabError, match="no such folder"):
        resolve_model("./not/here")
