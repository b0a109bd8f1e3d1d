"""Run the one file from Python: plain onnxruntime, one 30 s window per `session.run`.

Nothing of the lab is needed at run time: the file holds the front end, the
loop and the byte table. This wrapper only adds what a script wants around
`session.run`: one-line errors, the language name -> token id lookup (from the
file's own metadata), and the outputs as a `OneWindow`. A whole recording is
host.py's loop around `EndToEnd.window`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LabError
from ..onnx_files import check_interface, end2end_interface
from ..transcribe.languages import check_english_only, language_token_id
from .assemble import END2END_VERSION, MAX_SAMPLES, OUTPUTS


@dataclass(frozen=True)
class OneWindow:
    """The outputs of one run: one window of at most 30 s, decoded once."""

    tokens: list[int]  # without <|endoftext|>; timestamps too if asked for
    text_bytes: bytes  # the tokens' UTF-8 bytes, not stripped
    text_end: list[int]  # where each token's bytes end in text_bytes
    no_speech_prob: float
    avg_logprob: float
    speech_seconds: float
    temperature: float

    @property
    def text(self) -> str:
        return self.text_bytes.decode("utf-8", errors="replace").strip()

    @property
    def text_tokens(self) -> list[int]:
        return [t for t, start, end in zip(self.tokens, [0, *self.text_end], self.text_end) if end > start]


class EndToEnd:
    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise LabError(f"{path}: no such ONNX file; build it with 05-export-end-to-end.py")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # not the notice that `language` and `task` are overridable defaults
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime has its own exception types for broken files
            raise LabError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0][:200]}); "
                           "build it again with 05-export-end-to-end.py --force") from exc  # fmt: skip
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        if self.metadata.get("end2end_version") != END2END_VERSION:
            raise LabError(f"{path} comes from another version of this lab; build it again with "
                           "05-export-end-to-end.py --force")  # fmt: skip
        # A file of another model saved under the lab's name (metadata copied or not) is named
        # here in one line, instead of ONNX Runtime's "Required inputs" traceback at run time.
        multilingual = self.metadata.get("multilingual", "1") != "0"
        check_interface(path, end2end_interface(multilingual), "python 05-export-end-to-end.py --force",
                        session=self.session)  # fmt: skip
        self.path = path

    def token_ids(self, language: str, task: str) -> dict[str, np.ndarray]:
        """The `language` and `task` inputs for a language code or name and a task name."""
        meta = self.metadata
        lang_to_id, names = json.loads(meta["lang_to_id"]), json.loads(meta["language_names"])
        if task not in ("transcribe", "translate"):
            raise LabError(f"unknown task {task!r}; use transcribe or translate")
        if meta.get("multilingual", "1") == "0":  # an English-only model: its prompt has neither
            check_english_only(language, task, meta.get("model_name", "the model"))
            return {}
        return {"language": np.array(language_token_id(language, lang_to_id, names), dtype=np.int64),
                "task": np.array(int(meta[task]), dtype=np.int64)}  # fmt: skip

    @property
    def timestamp_begin(self) -> int:
        return int(self.metadata["timestamp_begin"])

    def window(self, audio: np.ndarray, language: str = "en", task: str = "transcribe", timestamps: bool = False,
               prompt: list[int] = (), temperature: float = 0.0, seed: int = 0) -> OneWindow:  # fmt: skip
        """One `session.run`: the first 30 s of `audio` decoded once."""
        feeds = {"audio": np.ascontiguousarray(audio[:MAX_SAMPLES], dtype=np.float32),
                 "timestamps": np.array(timestamps), "prompt": np.array(list(prompt), dtype=np.int64),
                 "temperature": np.array(temperature, dtype=np.float32),
                 "seed": np.array(seed, dtype=np.int64), **self.token_ids(language, task)}  # fmt: skip
        tokens, text, text_end, no_speech_prob, avg_logprob, speech = self.session.run(OUTPUTS, feeds)
        return OneWindow(tokens.tolist(), bytes(text), text_end.tolist(), float(no_speech_prob),
                         float(avg_logprob), float(speech), temperature)  # fmt: skip

    def transcribe(self, audio: np.ndarray, language: str = "en", task: str = "transcribe",
                   timestamps: bool = False, options=None, progress=None):
        """A recording of any length, with Whisper's safeguards: host.py's loop over `window`."""
        from .host import transcribe

        self.token_ids(language, task)  # a bad language or task fails before any work
        return transcribe(self, audio, language, task, timestamps, options, progress)
