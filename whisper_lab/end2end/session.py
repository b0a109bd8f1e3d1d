"""Run the one file from Python: plain onnxruntime, audio in, a transcript out.

Nothing of the lab is needed at run time: the file holds the front end, the
loop and the byte table. This wrapper only adds what a script wants around
`session.run`: one-line errors, the language name -> token id lookup (from the
file's own metadata), and UTF-8 decoding of the `text` output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LabError
from ..onnx_files import check_interface, end2end_interface
from ..transcribe.languages import check_english_only, language_token_id
from .assemble import END2END_VERSION, MAX_SAMPLES


@dataclass(frozen=True)
class Transcript:
    tokens: list[int]
    text: str
    no_speech_prob: float
    avg_logprob: float


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

    def transcribe(self, audio: np.ndarray, language: str = "en", task: str = "transcribe") -> Transcript:
        audio = np.ascontiguousarray(audio[:MAX_SAMPLES], dtype=np.float32)
        feeds = {"audio": audio, **self.token_ids(language, task)}
        tokens, text, no_speech_prob, avg_logprob = self.session.run(None, feeds)
        return Transcript(tokens.tolist(), bytes(text).decode("utf-8", errors="replace"),
                          float(no_speech_prob), float(avg_logprob))  # fmt: skip
