"""Language codes: Whisper picks the language of its output from one prompt token.

The decoder's prompt is `<|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>`;
the second token names the spoken language (`<|en|>`, `<|fr|>`, ... 99 of them).
We accept a code (`en`) or an English name (`english`) and check it against the
model's own list, so a typo fails with a clear message before any audio is decoded.
"""

from __future__ import annotations

from ..errors import LabError


def language_token_id(language: str, lang_to_id: dict[str, int], names: dict[str, str] | None = None) -> int:
    """Token id of `<|code|>` for a code or a language name; LabError if the model lacks it.

    lang_to_id maps tokens like "<|en|>" to ids; names maps "english" to "en".
    """
    wanted = language.strip().lower()
    code = (names or {}).get(wanted, wanted)
    token = f"<|{code}|>"
    if token not in lang_to_id:
        codes = sorted(t.strip("<|>") for t in lang_to_id)
        shown = ", ".join(codes[:12]) + (", ..." if len(codes) > 12 else "")
        raise LabError(f"unknown language {language!r}; use a code such as {shown} ({len(codes)} in all)")
    return lang_to_id[token]


def check_english_only(language: str, task: str, model: str) -> None:
    """An English-only (.en) model transcribes English and nothing else: say so for anything else."""
    if language.strip().lower() not in ("en", "english"):
        raise LabError(f"{model} is an English-only model; it cannot take --language {language} "
                       "(use en, or a multilingual model)")  # fmt: skip
    if task != "transcribe":
        raise LabError(f"{model} is an English-only model; it can only transcribe, not {task}")


def check_prompt_of_checkpoint(checkpoint, language: str, task: str, model: str) -> None:
    """The same checks, read from a checkpoint folder's generation_config.json, before anything is exported.

    Exporting takes minutes; a typo in --language (or French asked of a .en model)
    should fail at once, not after. A folder without that file is checked later,
    when the exported files are read.
    """
    import json
    from pathlib import Path

    try:
        generation = json.loads((Path(checkpoint) / "generation_config.json").read_text())
    except (OSError, ValueError):
        return
    if not (generation.get("is_multilingual", True) and generation.get("lang_to_id")):
        return check_english_only(language, task, model)
    if f"<|{language.strip().lower()}|>" in generation["lang_to_id"]:
        return  # a code such as "en": no need to import transformers (3 s) for its table of names
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    language_token_id(language, generation["lang_to_id"], TO_LANGUAGE_CODE)
