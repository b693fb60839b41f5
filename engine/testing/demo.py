"""The `make demo` model: a tiny random-weight gpt-oss whose replies are scripted, so a newcomer
can try every part of the app (reasoning pane, Markdown, stats, Stop, regenerate) on any machine.

Every reply token still goes through the real engine: the tiny model runs a forward pass for
each one, and only the choice of token is scripted. The folder carries DEMO_MARKER, which is
what makes `load_model` use these decoders; a folder without it is always sampled.

The script is written from the prompt each run sees: the last user message (its words are
echoed), the reasoning effort of the system message (longer analysis on high) and any attached
documents. The decoder learns the prompt from the tokens it is fed; tokens a cache held before
this process saw them (a prompt cache restored from disk) are unknown, and the reply then falls
back to what it can see.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import mlx.core as mx

from engine.cache import LayerCache, cache_offset
from engine.errors import ModelLoadError
from engine.generate import Decoder
from engine.harmony import Channel, Message, ReasoningEffort, Role, parse_messages
from engine.model import Model
from engine.sampling import Sampler
from engine.testing.scripted import ScriptedSampler, reply_ids
from engine.testing.synthetic import tiny_config, write_checkpoint
from engine.testing.synthetic_tokenizer import (
    HARMONY_WORDS,
    TRAINING_TEXT,
    train_bpe,
    write_tokenizer_json,
)
from engine.tokenizer import N_VOCAB, HarmonyTokenizer, SpecialToken

# What makes a folder the demo model for `load_model`; a folder without it is always sampled.
DEMO_MARKER = "oss-desk-demo.json"
DEMO_FORMAT = 1
DEMO_LABEL = "Demo model — not gpt-oss"
# Enough merges that the demo's own words are single tokens, so answers stream word by word.
DEMO_MERGES = 1500
_MAX_MARKER_BYTES = 64 << 10
_REASONING = re.compile(r"^Reasoning: (low|medium|high)$", re.M)
_DOCUMENT_TAG = re.compile(r'<document name="([^"]*)"[^>]*>.*?</document>\s*', re.S)
_ATTACHED = re.compile(
    r"^Attached \(too long to include, searchable with the browser tool\): (.*?)\. "
    r"Search them[^\n]*\n*",
    re.S,
)
_ATTACHED_NAME = re.compile(r"(.+?) \([^)]*\)(?:; |$)")


_WORD = re.compile(r"[^\W\d_][\w'’-]*")
# Words too common to echo back as the question's key words.
_STOPWORD_TEXT = """about after also and are because but can could does for from has have how
into its just like more most much not one only should some than that the their them then there
these they this those was were what when where which who why will with would you your"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class DemoPrompt:
    """What a demo reply is written from. `seen_question` is False when the user message lay in
    tokens the decoder never saw (a prompt cache restored from disk)."""

    question: str
    effort: ReasoningEffort = ReasoningEffort.MEDIUM
    documents: tuple[str, ...] = ()
    seen_question: bool = True


def keywords(text: str, limit: int = 4) -> list[str]:
    """The question's first distinct content words, lower-cased, in order."""
    found: list[str] = []
    for word in _WORD.findall(text):
        word = word.lower()
        if len(word) > 2 and word not in _STOPWORDS and word not in found:
            found.append(word)
    return found[:limit]


def demo_reply(prompt: DemoPrompt) -> tuple[str, str]:
    """(analysis, Markdown answer) for one user message: the analysis grows with the effort;
    the answer has a heading, a list, a code block, a table and math, all echoing its words."""
    prompt = replace(prompt, effort=ReasoningEffort(prompt.effort))
    words = keywords(prompt.question) or ["question"]
    topic = " ".join(_WORD.findall(prompt.question)[:12])
    if not topic:
        topic = "the attached documents" if prompt.documents else "an empty message"
    letters = [len(w) for w in words]
    return _analysis(prompt, topic, words, letters), _answer(prompt, topic, words, letters)


def _vowels(word: str) -> int:
    return sum(c in "aeiouy" for c in word)


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _analysis(prompt: DemoPrompt, topic: str, words: list[str], letters: list[int]) -> str:
    quoted = ", ".join(f"“{w}”" for w in words)
    lines = [
        f"The user asks about “{topic}”. I will answer with a short Markdown overview of the "
        f"key words {quoted}: a list, a code block, a table and a little math."
    ]
    if not prompt.seen_question:
        lines.append("The question lies in a part of the chat I cannot see, so I keep it general.")
    if prompt.documents:
        lines.append(
            f"They attached {_names(prompt.documents)}. As the demo model I do not read "
            "documents, so I will say that plainly."
        )
    if prompt.effort is ReasoningEffort.LOW:
        return " ".join(lines)
    lines.append(
        "First I list the key words, then I put them in code, then I count their letters in a "
        "table; the total gives a small formula to render."
    )
    if prompt.effort is ReasoningEffort.HIGH:
        for i, (word, n) in enumerate(zip(words, letters, strict=True), start=1):
            lines.append(f"Row {i}: “{word}” has {n} letters, {_vowels(word)} of them vowels.")
        sums = " + ".join(map(str, letters))
        lines += [
            f"Checking the total: {sums} = {sum(letters)}, so the average is "
            f"{sum(letters)}/{len(letters)} ≈ {sum(letters) / len(letters):.2f}.",
            "A real gpt-oss would reason about what the question means, not how it is spelled; "
            "the answer should say that this is a demo.",
            "Before answering I make sure the heading, list, code, table and formula are all "
            "there, since the point is to show each of them.",
        ]
    return " ".join(lines)


def _answer(prompt: DemoPrompt, topic: str, words: list[str], letters: list[int]) -> str:
    total = sum(letters)
    parts = [f"## {topic[:1].upper()}{topic[1:]}"]
    if prompt.documents:
        parts.append(
            f"You attached **{_names(prompt.documents)}**. The demo model does not read "
            "documents; gpt-oss reads them whole, or searches them when they are long."
        )
    parts.append(
        "This is the **demo model**, not gpt-oss: the words are scripted, but every token came "
        "from a real forward pass of a tiny random model, so the speed, *Stop* and *Regenerate* "
        "behave as they will with gpt-oss."
    )
    parts.append(
        "Key words in your question:\n\n"
        + "\n".join(
            f"{i}. **{w}**: {n} letters"
            for i, (w, n) in enumerate(zip(words, letters, strict=True), 1)
        )
    )
    listed = ", ".join(f'"{w}"' for w in words)
    parts.append(
        "```python\n"
        f"words = [{listed}]\n"
        "for word in sorted(words, key=len):\n"
        '    print(f"{word}: {len(word)} letters")\n'
        "```"
    )
    rows = "\n".join(f"| {w} | {n} | {_vowels(w)} |" for w, n in zip(words, letters, strict=True))
    parts.append(f"| Word | Letters | Vowels |\n| --- | ---: | ---: |\n{rows}")
    parts.append(
        f"Together they have $L = {total}$ letters, so on average\n\n"
        f"$$\\bar{{L}} = \\frac{{1}}{{n}}\\sum_{{i=1}}^{{n}} L_i = "
        f"\\frac{{{total}}}{{{len(words)}}} \\approx {total / len(words):.2f}$$"
    )
    parts.append("> To chat with gpt-oss itself, choose its folder in **File › Choose Model…**.")
    return "\n\n".join(parts)


def tokenizer_training_text() -> str:
    """The synthetic tokenizer's text plus sample demo replies, so the demo's words become
    tokens of their own."""
    samples = [
        DemoPrompt("Why is the sky blue at noon?", ReasoningEffort.HIGH, ("report.pdf",)),
        DemoPrompt("How do I read a CSV file in Python?", ReasoningEffort.MEDIUM),
        DemoPrompt("", ReasoningEffort.LOW, ("notes.md", "data.csv"), seen_question=False),
    ]
    replies = [text for sample in samples for text in demo_reply(sample)]
    return TRAINING_TEXT + HARMONY_WORDS * 8 + "\n".join(replies * 2)


def read_marker(model_dir: Path) -> dict[str, object]:
    """The demo marker's contents; raises ModelLoadError if it is not one `write_demo_model`
    wrote (a damaged marker must not silently turn a folder's replies into a script)."""
    path = model_dir / DEMO_MARKER
    try:
        if not path.is_file() or path.stat().st_size > _MAX_MARKER_BYTES:
            raise ValueError("not a small ordinary file")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            f"The demo marker {path} is damaged ({e}). Delete the folder and run `make demo` "
            "again to write a fresh demo model."
        ) from e
    if not isinstance(data, dict) or data.get("format") != DEMO_FORMAT:
        raise ModelLoadError(
            f"The demo marker {path} is not one this version wrote. Delete the folder and run "
            "`make demo` again to write a fresh demo model."
        )
    return data


class DemoDecoders:
    """The decoder factory `load_model` installs for a demo folder: one DemoDecoder per run.

    It remembers which token ids each cache was fed (by its first layer's cache object, weakly),
    so a run can read the whole prompt even when the cache already held most of it."""

    def __init__(self, tokenizer: HarmonyTokenizer) -> None:
        self.tokenizer = tokenizer
        self._fed: weakref.WeakKeyDictionary[LayerCache, list[int | None]] = (
            weakref.WeakKeyDictionary()
        )
        self.last_effort = ReasoningEffort.MEDIUM

    def __call__(self, model: Model, cache: Sequence[LayerCache], sampler: Sampler) -> Decoder:
        return DemoDecoder(model, cache, self)

    def record(self, cache: Sequence[LayerCache], tokens: Sequence[int]) -> list[int | None]:
        """The ids `cache` holds once `tokens` are fed (None where it held ids unseen here)."""
        held = cache_offset(cache)
        known = self._fed.get(cache[0], [])[:held]
        known += [None] * (held - len(known)) + [int(t) for t in tokens]
        self._fed[cache[0]] = known
        return known

    def read_prompt(self, ids: Sequence[int | None]) -> DemoPrompt:
        """The question, effort and attached documents of a prompt, as far as it is known."""
        start = max((i + 1 for i, t in enumerate(ids) if t is None), default=0)
        messages = parse_messages(
            [t for t in ids[start:] if t is not None], self.tokenizer, role=None
        )
        for message in messages:
            if message.role is Role.SYSTEM and (found := _REASONING.search(message.text)):
                self.last_effort = ReasoningEffort(found.group(1))
        users = [m.text for m in messages if m.role is Role.USER]
        question, documents = split_user_message(users[-1] if users else "")
        return DemoPrompt(question, self.last_effort, documents, seen_question=bool(users))

    def reply(self, prompt: DemoPrompt) -> tuple[list[int], list[int]]:
        """The whole reply's ids after `<|start|>assistant`, and the answer's own ids (its text
        and <|return|>), which a forced end of the analysis jumps to."""
        analysis, answer = demo_reply(prompt)
        messages = [
            Message.assistant(analysis, channel=Channel.ANALYSIS),
            Message.assistant(answer),
        ]
        answer_ids = [*self.tokenizer.encode_ordinary(answer), int(SpecialToken.RETURN)]
        return reply_ids(self.tokenizer, messages), answer_ids


class DemoDecoder(Decoder):
    """A Decoder whose samples follow the demo script; the model computes every step for real.

    The first sampled feed of a run is the end of its prompt (the session starts one decoder
    per run); a later feed of several tokens is the session closing the analysis itself (budget,
    loop, Finish now), and the script then jumps to its answer."""

    def __init__(self, model: Model, cache: Sequence[LayerCache], demo: DemoDecoders) -> None:
        super().__init__(model, cache, self._sample)
        self._demo = demo
        self._script: ScriptedSampler | None = None
        self._answer: list[int] = []

    def feed(self, tokens: Sequence[int], *, sample: bool) -> None:
        held = self._demo.record(self._cache, tokens)
        if sample and self._script is None:
            reply, self._answer = self._demo.reply(self._demo.read_prompt(held))
            self._script = ScriptedSampler(reply)
        elif sample and len(tokens) > 1 and self._script is not None and self._in_analysis():
            self._script.discard_remaining()
            self._script.extend(self._answer)
        super().feed(tokens, sample=sample)

    def _in_analysis(self) -> bool:
        # The answer is the script's tail: more left than the answer means analysis is.
        return self._script is not None and self._script.remaining > len(self._answer)

    def _sample(self, logprobs: mx.array) -> mx.array:
        if self._script is None or self._script.remaining == 0:
            # Past the script (the session asked for more than the reply): end the message.
            return mx.array([int(SpecialToken.RETURN)], dtype=mx.uint32)
        return self._script(logprobs)


def split_user_message(text: str) -> tuple[str, tuple[str, ...]]:
    """The user's own words and the names of the documents the app put in front of them."""
    names = [m.group(1) for m in _DOCUMENT_TAG.finditer(text)]
    text = _DOCUMENT_TAG.sub("", text)
    attached = _ATTACHED.match(text)
    if attached:
        names += [m.group(1) for m in _ATTACHED_NAME.finditer(attached.group(1))]
        text = text[attached.end() :]
    return text.strip(), tuple(names)


def demo_decoders_for(model_dir: Path) -> DemoDecoders | None:
    """What `load_model` installs: demo decoders for a folder with the demo marker, else None."""
    if not (model_dir / DEMO_MARKER).exists():
        return None
    read_marker(model_dir)
    return DemoDecoders(HarmonyTokenizer.from_tokenizer_json(model_dir / "tokenizer.json"))


def is_demo_folder(model_dir: Path) -> bool:
    return (model_dir / DEMO_MARKER).is_file()


def default_demo_folder() -> Path:
    """Beside the app's history: ~/Library/Application Support/OSS Desk/models/demo on a Mac."""
    import platformdirs

    return Path(platformdirs.user_data_dir("OSS Desk", "OSS Desk")) / "models" / "demo"


def write_demo_model(folder: Path, *, seed: int = 0) -> Path:
    """A tiny gpt-oss with the real vocabulary size, a tokenizer trained on the demo's words, and
    the marker, written last so an interrupted run leaves no folder that loads as a demo."""
    folder.mkdir(parents=True, exist_ok=True)
    write_checkpoint(folder, tiny_config(vocab_size=N_VOCAB), seed=seed)
    ranks = train_bpe(tokenizer_training_text(), DEMO_MERGES)
    write_tokenizer_json(folder / "tokenizer.json", ranks)
    marker = {"format": DEMO_FORMAT, "label": DEMO_LABEL, "about": __doc__.splitlines()[0]}
    (folder / DEMO_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return folder


def ensure_demo_model(folder: Path) -> Path:
    """The demo model in `folder`, written if it is not there yet; never writes over a folder
    that holds something else."""
    if is_demo_folder(folder):
        read_marker(folder)
        return folder
    if folder.exists() and any(folder.iterdir()):
        raise ModelLoadError(
            f"{folder} already holds files that are not the demo model. Choose an empty or new "
            "folder for it (make demo DEMO_DIR=...)."
        )
    return write_demo_model(folder)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Write the demo model (tiny, scripted replies, not gpt-oss) if it is missing "
        "and print its folder."
    )
    parser.add_argument("folder", nargs="?", type=Path, help="default: in the app's data folder")
    args = parser.parse_args(argv)
    folder = (args.folder or default_demo_folder()).expanduser()
    fresh = not is_demo_folder(folder)
    try:
        ensure_demo_model(folder)
    except ModelLoadError as e:
        sys.exit(str(e))
    if fresh:
        print(f"wrote the demo model ({DEMO_LABEL}) to {folder}", file=sys.stderr)
    print(folder)


if __name__ == "__main__":
    main()
