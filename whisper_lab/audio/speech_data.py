"""Real English speech with reference transcripts, fetched reproducibly from Debian.

To measure a transcriber we need recordings whose words we know. Three sources,
all real human speech with a licence that allows this use:

* `samples/jfk.wav`, shipped in this repository: John F. Kennedy's 1961 inaugural
  address (public domain), the sample clip of whisper.cpp, taken from the
  source distribution of pywhispercpp 1.5.1 on PyPI.
* Debian's `pocketsphinx-testdata` (BSD-2-Clause, CMU Sphinx test data): five
  LibriVox readings of *Sense and Sensibility* (the recordings are public domain)
  and five short "cards" utterances, with transcripts.
* Debian's `asterisk-core-sounds-en-wav` + `asterisk-core-sounds-en`
  (CC-BY-SA-3.0, voice of Allison Smith): the telephone prompts of the Asterisk
  PBX, 8 kHz, with their official transcripts.

Each package is downloaded from the Debian archive by a pinned URL and checked
against its SHA-256, then unpacked with the Python standard library (a .deb is an
`ar` archive holding a `data.tar.xz`), so it works on any OS, without root.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..cache import cache_root
from ..errors import LabError
from ..files import atomic_dir

REPO_ROOT = Path(__file__).resolve().parents[2]  # whisper_lab/audio/speech_data.py -> the repository
DEBIAN_POOL = "http://deb.debian.org/debian/pool/main"


@dataclass(frozen=True)
class DebianPackage:
    name: str
    url: str
    sha256: str
    licence: str


PACKAGES = {
    p.name: p
    for p in (
        DebianPackage(
            "pocketsphinx-testdata",
            f"{DEBIAN_POOL}/p/pocketsphinx/pocketsphinx-testdata_0.8+5prealpha+1-15_all.deb",
            "eaeb7a01d54f20b799d1a81ef110ec544b2cb47ea006614078220737a33019f0",
            "BSD-2-Clause (CMU Sphinx); LibriVox recordings are public domain",
        ),
        DebianPackage(
            "asterisk-core-sounds-en-wav",
            f"{DEBIAN_POOL}/a/asterisk-core-sounds/asterisk-core-sounds-en-wav_1.6.1-1_all.deb",
            "2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d",
            "CC-BY-SA-3.0 (Allison Smith, Digium)",
        ),
        DebianPackage(
            "asterisk-core-sounds-en",
            f"{DEBIAN_POOL}/a/asterisk-core-sounds/asterisk-core-sounds-en_1.6.1-1_all.deb",
            "973e797d28e37fa6ca3c0a9d6fa717e77cf1268ae916bf09fd3503113cdffa50",
            "CC-BY-SA-3.0 (Allison Smith, Digium)",
        ),
    )
}


@dataclass(frozen=True)
class Utterance:
    id: str
    path: Path
    text: str  # reference transcript, as its source writes it
    source: str


JFK = Utterance(
    id="jfk",
    path=REPO_ROOT / "samples" / "jfk.wav",
    text="And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country.",
    source="JFK inaugural address 1961 (public domain), via pywhispercpp 1.5.1",
)


def _data_tar(deb: bytes) -> tarfile.TarFile:
    """Open the data.tar.* member of a .deb (an `ar` archive: 8-byte magic, 60-byte member headers)."""
    if not deb.startswith(b"!<arch>\n"):
        raise LabError("downloaded file is not a Debian package")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = deb[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        pos += 60 + size + (size % 2)  # members are 2-byte aligned
    raise LabError("Debian package has no data.tar member")


def fetch_debian_package(name: str) -> Path:
    """Download, verify and unpack a pinned Debian package into the cache; return its root folder."""
    package = PACKAGES[name]
    root = cache_root() / "speech-data" / name
    if (root / ".complete").is_file():
        return root
    print(f"Downloading {package.url} ...", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(package.url, timeout=60) as response:
            deb = response.read()
    except OSError as exc:
        raise LabError(f"cannot download {name} from the Debian archive ({exc}); check the network") from exc
    digest = hashlib.sha256(deb).hexdigest()
    if digest != package.sha256:
        raise LabError(f"{name}: sha256 {digest} does not match the pinned {package.sha256}")
    with atomic_dir(root) as tmp, _data_tar(deb) as tar:
        tar.extractall(tmp, filter="data")
        (tmp / ".complete").write_text(f"{package.url}\n{package.sha256}\n{package.licence}\n")
    return root


def _pocketsphinx_set(folder: str, transcript_file: str) -> list[Utterance]:
    data = fetch_debian_package("pocketsphinx-testdata") / "usr/share/pocketsphinx/test/data" / folder
    utterances = []
    # lines look like: "<s> he was not an ill disposed young man </s> (sense_and_sensibility_01_austen_64kb-0880)"
    for line in (data / transcript_file).read_text().splitlines():
        match = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
        if match:
            text, file_id = match.group(1).strip(), match.group(2)
            utterances.append(Utterance(f"{folder}/{file_id}", data / f"{file_id}.wav", text,
                                        f"pocketsphinx-testdata {folder}"))  # fmt: skip
    return utterances


def librivox_utterances() -> list[Utterance]:
    """Five sentences of Sense and Sensibility read for LibriVox (16 kHz, 3-7 s each)."""
    return _pocketsphinx_set("librivox", "transcription")


def cards_utterances() -> list[Utterance]:
    """Five short playing-card phrases ("ten of clubs"), 16 kHz."""
    return _pocketsphinx_set("cards", "cards.transcription")


def asterisk_utterances(joined: bool = False) -> list[Utterance]:
    """Asterisk's English telephone prompts (8 kHz) with their official transcripts.

    We keep the prompts whose transcript is plain words: no "[beep tone]" or
    "(silence)" descriptions, no "<beep>". An ellipsis marks a prompt that the
    PBX joins to another one ("...has joined the conference."); `joined=True`
    keeps those too, without the dots (the recording holds exactly the words
    around them), and the sentences of the followme/ folder (the other
    sub-folders hold single words: digits, letters, the phonetic alphabet); it
    leaves out the prompts whose text writes a keypad key as * or # (the voice
    says "star" or "pound").
    """
    sounds = fetch_debian_package("asterisk-core-sounds-en-wav") / "usr/share/asterisk/sounds/en_US_f_Allison"
    texts = fetch_debian_package("asterisk-core-sounds-en") / "usr/share/doc/asterisk-core-sounds-en"
    listing = gzip.decompress((texts / "core-sounds-en.txt.gz").read_bytes()).decode("utf-8", "replace")
    utterances = []
    for line in listing.splitlines():
        key, sep, text = line.partition(":")
        key, text = key.strip(), text.strip()
        if not sep or key.startswith(";") or not text or any(mark in text for mark in ("[", "<", "(")):
            continue
        if not joined and ("/" in key or "..." in text):
            continue  # the 30-utterance default of 04 was drawn from this list: keep it as it is
        if joined:
            if ("/" in key and not key.startswith("followme/")) or "*" in text or "#" in text:
                continue
            text = " ".join(text.replace("...", " ").split())
        wav = sounds / f"{key}.wav"
        if wav.is_file():
            utterances.append(Utterance(f"asterisk/{key}", wav, text, "asterisk-core-sounds-en 1.6.1"))
    return utterances


def write_concatenation(utterances: list[Utterance], target: Path, gap_seconds: float = 0.5) -> str:
    """Join utterances (16 kHz mono, with short pauses) into one WAV; return the joined reference text."""
    import numpy as np

    from .loading import SAMPLE_RATE, load_audio, write_wav_16k

    gap = np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.float32)
    pieces = []
    for utterance in utterances:
        pieces += [load_audio(utterance.path), gap]
    write_wav_16k(np.concatenate(pieces), target)
    return " ".join(u.text for u in utterances)


def _seconds(path: Path) -> float:
    import soundfile as sf

    return sf.info(str(path)).duration


def english_test_set(count: int | str, min_prompt_words: int = 5, max_seconds: float = 30.0) -> list[Utterance]:
    """`count` real English utterances with references, the same ones on every machine; "all" for every one.

    In this order, so that a small set still mixes voices: the JFK sample, the five
    LibriVox sentences, the five "cards" phrases, then Asterisk prompts. From the
    Asterisk prompts we take sentences of at least `min_prompt_words` words (one-word
    prompts like "minute" say little about a transcriber), spread evenly over the
    alphabetical list, and none longer than `max_seconds`: up to 30 s every
    transcriber decodes an utterance in one window, the same way (longer audio takes
    each one down its own long-form path). Packages are only downloaded when the
    count reaches them.

    "all" is the large set (`full_test_set`): every utterance of the three sources.
    """
    if count == ALL:
        return full_test_set(max_seconds)
    if not isinstance(count, int) or count < 1:
        raise LabError(f"the test set needs a number of utterances (at least 1) or {ALL!r}, not {count!r}")
    chosen = [JFK]
    for source in (librivox_utterances, cards_utterances):
        if len(chosen) < count:
            chosen += source()[: count - len(chosen)]
    missing = count - len(chosen)
    if missing > 0:
        prompts = sorted((u for u in asterisk_utterances()
                          if len(u.text.split()) >= min_prompt_words and _seconds(u.path) <= max_seconds),
                         key=lambda u: u.id)  # fmt: skip
        if missing > len(prompts):
            raise LabError(f"only {len(chosen) + len(prompts)} utterances are available; ask for fewer")
        step = len(prompts) / missing
        chosen += [prompts[int(i * step)] for i in range(missing)]
    return chosen


ALL = "all"


def full_test_set(max_seconds: float = 30.0) -> list[Utterance]:
    """Every utterance we have a reference for: ~2,700 words, enough to see half a point of WER.

    The JFK sample, all transcribed CMU Sphinx test recordings (5 LibriVox sentences,
    5 "cards" phrases), then every Asterisk prompt with a plain-word transcript up to
    `max_seconds` long, one-word prompts included, sorted by name. A difference of
    one word is then 0.04 points, where the 30-utterance default (384 words) moves by
    0.26 points per word. The other Sphinx recordings in the package (goforward.raw,
    numbers.raw, something.raw, the TIDIGITS features) come without a transcript.
    """
    prompts = sorted((u for u in asterisk_utterances(joined=True) if _seconds(u.path) <= max_seconds), key=lambda u: u.id)
    return [JFK, *librivox_utterances(), *cards_utterances(), *prompts]
