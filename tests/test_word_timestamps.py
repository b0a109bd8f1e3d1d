"""Word timestamps: the numerical steps against OpenAI's, the attention decoder, and real speech.

The real-speech tests hold 03's word starts to transformers' own word timing on the
same weights (02 --word-timestamps), the reference of docs/word-timestamps.md.
"""

from __future__ import annotations

import difflib
import json

import numpy as np
import pytest
from conftest import assert_one_line_error, run_script

from whisper_lab.audio.loading import load_audio
from whisper_lab.audio.speech_data import JFK, librivox_utterances
from whisper_lab.onnx_files import ALIGNMENT_OUTPUT, attention_decoder_file, onnx_pair, read_metadata
from whisper_lab.transcribe import timing
from whisper_lab.transcribe.onnx_whisper import load_onnx_whisper
from whisper_lab.transcribe.options import DecodingOptions

WORDS = DecodingOptions(word_timestamps=True)


# --- the numerical steps, against OpenAI's code written out cell by cell ---------------------


def openai_dtw(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """whisper/timing.py's dtw_cpu + backtrace, one cell at a time (there compiled with numba)."""
    n, m = x.shape
    cost = np.ones((n + 1, m + 1), dtype=np.float32) * np.inf
    trace = -np.ones((n + 1, m + 1), dtype=np.float32)
    cost[0, 0] = 0
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = x[i - 1, j - 1] + c
            trace[i, j] = t
    i, j = n, m
    trace[0, :] = 2
    trace[:, 0] = 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        if trace[i, j] == 0:
            i, j = i - 1, j - 1
        elif trace[i, j] == 1:
            i -= 1
        else:
            j -= 1
    return tuple(np.array(path[::-1]).T)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (9, 40), (23, 150)])
def test_dtw_takes_the_path_openai_takes(shape):
    rng = np.random.default_rng(sum(shape))
    for x in (rng.normal(size=shape), rng.integers(0, 3, size=shape).astype(np.float64)):  # the second has ties
        rows, columns = timing.dtw(x)
        expected_rows, expected_columns = openai_dtw(x)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_array_equal(columns, expected_columns)
        assert rows[0] == columns[0] == 0 and rows[-1] == shape[0] - 1 and columns[-1] == shape[1] - 1
        assert (np.diff(rows) >= 0).all() and (np.diff(columns) >= 0).all()


def test_median_filter_is_torchs_reflect_pad_and_sort():
    import torch
    import torch.nn.functional as F

    x = np.random.default_rng(0).normal(size=(8, 5, 60)).astype(np.float32)
    t = F.pad(torch.from_numpy(x), (3, 3, 0, 0), mode="reflect")  # OpenAI's median_filter, CPU branch
    expected = t.unfold(-1, 7, 1).sort()[0][..., 3].numpy()
    np.testing.assert_array_equal(timing.median_filter(x, 7), expected)
    short = x[..., :3]
    np.testing.assert_array_equal(timing.median_filter(short, 7), short)  # too short to mirror: as it is


def test_words_and_punctuation_from_real_tokens(whisper_base):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(whisper_base.path / "tokenizer.json"))
    text = ' "Hello," she said (quietly). Unbelievable!'
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    decode = lambda t: tokenizer.decode(t, skip_special_tokens=False)  # noqa: E731
    words, word_tokens = timing.split_to_word_tokens(ids, decode, "en")
    assert "".join(words) == text and [t for w in word_tokens for t in w] == ids
    timed = [timing.Word(w, float(i), float(i + 1), 1.0, t) for i, (w, t) in enumerate(zip(words, word_tokens))]
    timing.merge_punctuations(timed)
    kept = [w.word for w in timed if w.word]
    assert kept == [' "Hello,"', " she", " said", " (quietly).", " Unbelievable!"]
    assert sum(len(w.tokens) for w in timed) == len(ids)


# --- the attention decoder -----------------------------------------------------------------


@pytest.fixture(scope="module")
def attention_run(exported_run):
    """03 --word-timestamps into the exported folder: adds the attention decoders, keeps the rest."""
    out = exported_run[0]
    before = {p: p.stat().st_mtime_ns for precision in ("fp32", "int8") for p in onnx_pair(out, "whisper-base", precision)}
    result = run_script("03-export-encoder-decoder.py", "--precision", "int8", "--word-timestamps", "--output-dir", out)
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before, "the everyday files must not be touched"
    return out


def test_attention_decoder_is_the_decoder_plus_one_output(attention_run):
    import onnx

    for precision in ("fp32", "int8"):
        plain = onnx.load(str(onnx_pair(attention_run, "whisper-base", precision).decoder), load_external_data=False)
        variant_path = attention_decoder_file(attention_run, "whisper-base", precision)
        variant = onnx.load(str(variant_path), load_external_data=False)
        assert [o.name for o in variant.graph.output] == [o.name for o in plain.graph.output] + [ALIGNMENT_OUTPUT]
        assert ALIGNMENT_OUTPUT not in [o.name for o in plain.graph.output]
        meta = read_metadata(variant_path)
        assert meta["variant"] == "attention" and meta["precision"] == precision
        assert len(json.loads(meta["alignment_heads"])) == 8


def test_alignment_heads_come_from_the_checkpoint(attention_run, whisper_base):
    generation = json.loads((whisper_base.path / "generation_config.json").read_text())
    meta = read_metadata(attention_decoder_file(attention_run, "whisper-base", "fp32"))
    assert json.loads(meta["alignment_heads"]) == generation["alignment_heads"]


def test_the_attention_decoder_decodes_the_same_text(attention_run, jfk_audio):
    for precision in ("fp32", "int8"):
        plain = load_onnx_whisper(attention_run, "whisper-base", precision)
        words = load_onnx_whisper(attention_run, "whisper-base", precision, word_timestamps=True)
        timestamps = DecodingOptions(timestamps=True)
        assert words.transcribe_tokens(jfk_audio, options=timestamps) == plain.transcribe_tokens(jfk_audio, options=timestamps)


# --- real speech -------------------------------------------------------------------------


def word_starts(transcript) -> list[tuple[str, float]]:
    return [(w.word.strip(" ,.!?").lower(), w.start) for s in transcript.segments for w in s.words]


@pytest.mark.slow  # about a minute on an idle 2-core machine (transformers and two ONNX precisions, 4 clips)
def test_word_starts_follow_transformers_on_real_speech(attention_run, hf_whisper):
    """JFK and three LibriVox sentences: 03 fp32 and int8 against 02's word timing (same weights)."""
    onnx = {p: load_onnx_whisper(attention_run, "whisper-base", p, word_timestamps=True) for p in ("fp32", "int8")}
    differences = {"fp32": [], "int8": []}
    for utterance in [JFK, *librivox_utterances()[:3]]:
        audio = load_audio(utterance.path)
        reference = word_starts(hf_whisper.word_transcript(audio))
        for precision, whisper in onnx.items():
            transcript = whisper.transcript(audio, options=WORDS)
            ours = word_starts(transcript)
            matcher = difflib.SequenceMatcher(a=[w for w, _ in ours], b=[w for w, _ in reference], autojunk=False)
            pairs = [(ours[b.a + k][1], reference[b.b + k][1]) for b in matcher.get_matching_blocks() for k in range(b.size)]
            assert len(pairs) >= 0.9 * len(reference), (utterance.id, ours, reference)
            starts = [t for _, t in ours]
            assert starts == sorted(starts) and 0 <= starts[0] and starts[-1] < len(audio) / 16_000
            for segment in transcript.segments:  # every word inside the recording, none longer than it
                assert "".join(w.word for w in segment.words).strip() == segment.text
            differences[precision] += [abs(a - b) for a, b in pairs]
    for precision, d in differences.items():
        assert np.median(d) <= 0.10 and np.percentile(d, 90) <= 0.30, (precision, np.median(d), np.percentile(d, 90))
    assert abs(np.median(differences["int8"]) - np.median(differences["fp32"])) <= 0.05


def test_02_json_has_transformers_word_times(tmp_path):
    out = tmp_path / "jfk.json"
    result = run_script("02-whisper-huggingface.py", "--audio", JFK.path, "--word-timestamps", "--output", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    document = json.loads(out.read_text())
    words = [w for s in document["segments"] for w in s["words"]]
    assert "".join(w["word"] for w in words).strip() == document["text"]
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert all(0 <= w["start"] <= w["end"] <= document["duration"] for w in words)
    assert document["language"] == "en" and 10.9 < document["duration"] < 11.1


def test_default_printout_lists_the_words_under_their_segment(attention_run):
    result = run_script("03-export-encoder-decoder.py", "--precision", "int8", "--output-dir", attention_run,
                        "--transcribe", JFK.path, "--word-timestamps")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Transcription:", ""]
    words = [line.split("]  ", 1)[1] for line in lines[2:] if line.startswith("    [")]
    assert words[:5] == ["And", "so", "my", "fellow", "Americans,"] or words[:5] == ["And", "so", "my", "fellow", "Americans"]
    assert len(words) == 22


def test_word_timestamps_need_the_attention_decoder(exported_run, jfk_audio):
    """The everyday decoder has no attention output: asking it for alignment is one clear error."""
    from whisper_lab.errors import LabError

    whisper = load_onnx_whisper(exported_run[0], "whisper-base", "fp32")
    assert whisper.alignment_heads is None
    with pytest.raises(LabError, match="attention decoder"):
        whisper.transcript(jfk_audio, options=WORDS)


def test_a_bad_output_path_fails_before_any_work(tmp_path):
    result = run_script("03-export-encoder-decoder.py", "--output-dir", tmp_path / "models", "--transcribe", JFK.path,
                        "--word-timestamps", "--output", tmp_path / "no" / "such" / "jfk.srt")  # fmt: skip
    assert_one_line_error(result, "does not exist")
    assert not (tmp_path / "models").exists()
    result = run_script("02-whisper-huggingface.py", "--audio", JFK.path, "--output", tmp_path / "jfk.subtitles")
    assert_one_line_error(result, "--output-format")


def test_04_draws_where_the_decoder_listens(attention_run, tmp_path):
    from PIL import Image

    result = run_script("04-compare-models.py", "--attention", JFK.path, "--model-dir", attention_run)
    assert result.returncode == 0, result.stderr
    picture = attention_run / "attention-jfk.png"
    assert f"Wrote {picture}" in result.stdout and JFK.text in result.stdout
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width > 600 and image.height > 400
    missing = run_script("04-compare-models.py", "--attention", JFK.path, "--model-dir", tmp_path)
    assert_one_line_error(missing, "--word-timestamps")
