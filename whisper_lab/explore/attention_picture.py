"""Where the decoder listens: the alignment heads' attention drawn over the log-mel (04 --attention).

Two panels share one time axis (the first 30 s window of the recording):

    top     the log-mel the encoder reads, with each word written where it was
            found to start (a line at its start)
    bottom  the alignment heads' cross-attention, averaged over the heads after
            OpenAI's normalising and smoothing: one row per text token (and
            <|endoftext|>), one column per 20 ms encoder frame; bright where the
            token is heard. The red line is the dynamic-time-warping path, the
            monotonic route through the bright cells; each token starts where
            the path enters its row.

The text is 03's default decoding of the window (greedy, no timestamps), and the
alignment is the one `--word-timestamps` computes (transcribe/timing.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.log_mel import HOP_LENGTH, N_FRAMES, SAMPLE_RATE, content_log_mel, pad_frames
from ..errors import LabError
from ..files import atomic_file
from ..onnx_files import attention_decoder_file, stale_reason
from ..transcribe.timing import TOKENS_PER_SECOND, Alignment, window_alignment


@dataclass
class AttentionPicture:
    path: Path
    text: str
    seconds: float  # of audio drawn
    clipped: bool  # the recording was longer than one window


def check_attention_decoder(model_dir: Path, model_name: str, precision: str) -> None:
    path = attention_decoder_file(model_dir, model_name, precision)
    reason = stale_reason(path)
    if reason:
        flag = "" if precision == "fp32" else f" --precision {precision}"
        raise LabError(f"{path.name} is {reason}; export it with: python 03-export-encoder-decoder.py{flag} "
                       f"--word-timestamps --output-dir {model_dir}")  # fmt: skip


def align_first_window(whisper, audio: np.ndarray, language: str = "en") -> tuple[np.ndarray, list[int], Alignment]:
    """The first window's log-mel (content frames only), its greedy tokens and their alignment."""
    mel = content_log_mel(audio[: N_FRAMES * HOP_LENGTH], whisper.spec.n_mels)
    window = pad_frames(mel)
    tokens = whisper.decode_window(window, whisper.prompt(language, "transcribe", timestamps=False), timestamps=False)
    text_tokens = [t for t in tokens if t < whisper.spec.eot]
    if not text_tokens:
        raise LabError("Whisper heard no words in this audio: nothing to align; try a recording with speech")
    cross_k, cross_v = whisper.encode(window[None])
    return mel, text_tokens, window_alignment(whisper, cross_k, cross_v, text_tokens, mel.shape[-1], language, "transcribe")


def draw(mel: np.ndarray, token_labels: list[str], alignment: Alignment, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = mel.shape[-1] * HOP_LENGTH / SAMPLE_RATE
    rows = len(token_labels)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 3.2 + 0.16 * rows), sharex=True,
                                      gridspec_kw={"height_ratios": [1.1, max(1.5, 0.09 * rows)]})  # fmt: skip
    top.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, mel.shape[0]))
    top.set_ylabel("mel band")
    top.set_title(title, fontsize=10)
    spoken = [w for w in alignment.words if w.word.strip() and not all(not c.isalnum() for c in w.word)]
    for k, word in enumerate(spoken):  # punctuation has a time too, but no sound of its own
        top.axvline(word.start, color="white", lw=0.6, alpha=0.7)
        top.text(word.start + 0.02, mel.shape[0] * (0.86 if k % 2 else 0.66), word.word.strip(), color="white",
                 fontsize=8, rotation=0, va="bottom", clip_on=True)  # fmt: skip
    frames = alignment.matrix.shape[1] / TOKENS_PER_SECOND
    bottom.imshow(alignment.matrix, aspect="auto", cmap="viridis", interpolation="nearest",
                  extent=(0, frames, rows - 0.5, -0.5))  # fmt: skip
    path_time = (alignment.time_indices + 0.5) / TOKENS_PER_SECOND
    bottom.plot(path_time, alignment.text_indices, color="red", lw=1.5, label="DTW path")
    bottom.set_yticks(range(rows))
    bottom.set_yticklabels(token_labels, fontsize=7)
    bottom.set_ylabel("token")
    bottom.set_xlabel("time (s)")
    bottom.legend(loc="upper right", fontsize=8)
    bottom.set_xlim(0, seconds)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    from PIL import Image  # matplotlib's own dependency

    buffer.seek(0)
    with Image.open(buffer) as image, atomic_file(path) as tmp:
        image.convert("RGB").quantize(colors=128).save(tmp, format="PNG", optimize=True)  # a third of the bytes


def draw_attention(audio_path: Path, model_dir: Path, model_name: str, out: Path | None = None,
                   precision: str = "fp32", language: str = "en") -> AttentionPicture:  # fmt: skip
    """Transcribe the first window of `audio_path` with the ONNX files, align it, draw the picture."""
    from ..audio.loading import load_audio
    from ..transcribe.onnx_whisper import load_onnx_whisper

    check_attention_decoder(model_dir, model_name, precision)
    audio = load_audio(audio_path)
    whisper = load_onnx_whisper(model_dir, model_name, precision, word_timestamps=True)
    mel, text_tokens, alignment = align_first_window(whisper, audio, language)
    labels = [whisper.tokenizer.decode([t], skip_special_tokens=False) for t in text_tokens] + ["<|endoftext|>"]
    text = whisper.text(text_tokens)
    out = out or Path(model_dir) / f"attention-{Path(audio_path).stem}.png"
    title = f"{Path(audio_path).name}: where the alignment heads of {model_name} ({precision}) listen"
    draw(mel, [repr(label.strip())[1:-1] or "␣" for label in labels], alignment, title, out)
    return AttentionPicture(out, text, mel.shape[-1] * HOP_LENGTH / SAMPLE_RATE, len(audio) > N_FRAMES * HOP_LENGTH)
