"""The on-disk prompt cache on the real engine (tiny synthetic model, window 8 so every prompt
rotates it): a restored cache plus the rest prefilled computes what a fresh prefill computes,
every kind of mismatch or damage falls back to a normal prefill, a failed write loses nothing,
and the folder stays under its cap."""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine import ChatSession, HarmonyTokenizer, LoadedModel, Message, load_model
from engine.chat.prompt import build_prompt
from engine.chat.prompt_cache import SUFFIX, PromptCache
from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer
from engine.tokenizer import N_VOCAB
from tests.conftest import CheckpointFactory

from .fixtures import fresh_logprobs
from .test_session import ATOL, expected_prompt, finish, make_session, reply

FIRST = ("Hi, please read this: " + "the quick brown fox jumps over the lazy dog. " * 3, "Got it.")
FOLLOW_UP = "What did the fox do?"


def _first_turn(model: LoadedModel, tok: HarmonyTokenizer) -> ChatSession:
    session, sampler = make_session(model, tok, reply(tok, FIRST[1], analysis="Reading."))
    finish(session.send(FIRST[0]))
    sampler.extend(reply(tok, "It jumped.") + reply(tok, "More."))  # for later turns, if any
    return session


def _follow_up(
    model: LoadedModel, tok: HarmonyTokenizer, history: tuple[Message, ...], store: PromptCache
) -> tuple[int, int, np.ndarray, list[int]]:
    """Restores into a new session of `history`, sends FOLLOW_UP; returns the restored prefix,
    the reused tokens, what the sampler saw first, and the prompt."""
    session, sampler = make_session(model, tok, reply(tok, "It jumped."), messages=history)
    restored = store.restore("7", session)
    _, done = finish(session.send(FOLLOW_UP))
    prompt = list(session.cached_tokens[: done.stats.prompt_tokens])
    return restored.tokens, done.stats.reused_tokens, sampler.seen[0], prompt


@pytest.fixture
def store(model: LoadedModel, tok: HarmonyTokenizer, tmp_path: Path) -> PromptCache:
    return PromptCache(model, tok, tmp_path / "prompts")


def test_restored_cache_plus_the_rest_matches_a_fresh_prefill(
    model: LoadedModel, tok: HarmonyTokenizer, store: PromptCache
) -> None:
    first = _first_turn(model, tok)
    saved = store.save("7", first)
    assert saved.saved and saved.tokens == len(first.cached_tokens) and saved.bytes > 0
    assert store.path("7").stat().st_size == saved.bytes == store.total_bytes()
    kept, reused, seen, prompt = _follow_up(model, tok, first.messages, store)
    prompt1 = expected_prompt(tok, Message.user(FIRST[0]))
    # The saved windows are rotated at the saved length; the next prompt drops the analysis,
    # so the cache goes back to the snapshot at the end of the first prompt, exactly.
    assert len(first.cached_tokens) > len(prompt1) + model.args.sliding_window
    assert kept == reused == len(prompt1)
    np.testing.assert_allclose(seen, fresh_logprobs(model, prompt), atol=ATOL)
    # the same reuse as the open chat gets
    _, open_done = finish(first.send(FOLLOW_UP))
    assert open_done.stats.reused_tokens == reused


def _with_tokenizer(path: Path) -> Path:
    if not (path / "tokenizer.json").is_file():
        write_synthetic_tokenizer(path)
    return path


def _quantizable(make_checkpoint: CheckpointFactory) -> Path:
    """head_dim 32: MLX quantizes the 16gb profile's KV cache in groups of 32 or more."""
    return _with_tokenizer(
        make_checkpoint(
            vocab_size=N_VOCAB, head_dim=32, num_attention_heads=4, num_key_value_heads=1
        )
    )


def test_the_16gb_profiles_8bit_cache_round_trips(
    make_checkpoint: CheckpointFactory, tmp_path: Path
) -> None:
    path = _quantizable(make_checkpoint)
    model = load_model(path, dtype="float32", profile="16gb")
    tok = HarmonyTokenizer.from_model_dir(path)
    store = PromptCache(model, tok, tmp_path)
    first = _first_turn(model, tok)
    assert store.save("7", first).saved
    kept, reused, seen, prompt = _follow_up(model, tok, first.messages, store)
    assert kept == reused > 0
    np.testing.assert_allclose(seen, fresh_logprobs(model, prompt), atol=ATOL)
    # the same chat on the same checkpoint under another profile starts from scratch
    full = load_model(path, dtype="float32")
    session, _ = make_session(full, tok, messages=first.messages)
    result = PromptCache(full, tok, tmp_path).restore("7", session)
    assert not result.restored and "another model, profile" in result.reason
    assert session.cached_tokens == ()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _flip(where: float) -> Callable[[Path], None]:
    def flip(path: Path) -> None:
        data = bytearray(path.read_bytes())
        i = int(len(data) * where)
        data[i] ^= 0x5A
        path.write_bytes(bytes(data))

    return flip


def _other_key(path: Path) -> None:
    path.rename(path.with_name("7" + SUFFIX))


@pytest.mark.parametrize(
    "damage",
    [_truncate, _flip(0.9), _flip(0.5), _flip(0.002), _other_key],
    ids=["truncated", "flipped-data", "flipped-middle", "flipped-header", "another-chat"],
)
def test_a_damaged_file_falls_back_to_a_full_prefill(
    model: LoadedModel,
    tok: HarmonyTokenizer,
    store: PromptCache,
    damage: Callable[[Path], None],
) -> None:
    first = _first_turn(model, tok)
    key = "8" if damage is _other_key else "7"
    assert store.save(key, first).saved
    damage(store.path(key))
    kept, reused, seen, prompt = _follow_up(model, tok, first.messages, store)
    assert kept == reused == 0
    np.testing.assert_allclose(seen, fresh_logprobs(model, prompt), atol=ATOL)


def test_another_model_is_not_restored(
    make_checkpoint: CheckpointFactory, model: LoadedModel, tok: HarmonyTokenizer, tmp_path: Path
) -> None:
    first = _first_turn(model, tok)
    assert PromptCache(model, tok, tmp_path).save("7", first).saved
    other = load_model(
        _with_tokenizer(make_checkpoint(seed=1, vocab_size=N_VOCAB)), dtype="float32"
    )
    session, _ = make_session(other, tok, messages=first.messages)
    result = PromptCache(other, tok, tmp_path).restore("7", session)
    assert not result.restored and "another model" in result.reason
    assert session.cached_tokens == ()


def test_edited_history_keeps_only_the_still_valid_prefix(
    model: LoadedModel, tok: HarmonyTokenizer, store: PromptCache
) -> None:
    first = _first_turn(model, tok)
    assert store.save("7", first).saved
    edited = (Message.user("Something else entirely."), *first.messages[1:])
    kept, reused, seen, prompt = _follow_up(model, tok, edited, store)
    # only the system prompt is shared: the window snapshotted at its end is restored
    system_end = min(build_prompt(tok, first.conversation()).marks)
    assert kept == reused == system_end
    np.testing.assert_allclose(seen, fresh_logprobs(model, prompt), atol=ATOL)


def test_a_failed_write_is_a_value_and_keeps_the_previous_file(
    model: LoadedModel, tok: HarmonyTokenizer, store: PromptCache
) -> None:
    first = _first_turn(model, tok)
    before = store.save("7", first)
    assert before.saved
    old = store.path("7").read_bytes()
    finish(first.send("And more text, so the next file is larger than the last one."))
    # A real write error: the kernel refuses to grow files past this size (EFBIG, like ENOSPC).
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(old), hard))
    try:
        failed = store.save("7", first)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert not failed.saved and str(store.folder) in failed.problem
    assert store.path("7").read_bytes() == old
    assert [p.name for p in store.folder.iterdir()] == ["7" + SUFFIX]  # no temp file left
    kept, _, seen, prompt = _follow_up(model, tok, first.messages[:3], store)
    assert kept > 0
    np.testing.assert_allclose(seen, fresh_logprobs(model, prompt), atol=ATOL)


def test_the_cap_evicts_the_least_recently_used_and_clear_frees_everything(
    model: LoadedModel, tok: HarmonyTokenizer, store: PromptCache
) -> None:
    first = _first_turn(model, tok)
    size = store.save("1", first).bytes
    store.save("2", first)
    os.utime(store.path("1"), (1_000, 1_000))
    os.utime(store.path("2"), (2_000, 2_000))
    session, _ = make_session(model, tok, messages=first.messages)
    assert store.restore("1", session).restored  # a use: "1" is now the most recent
    store.max_bytes = 2 * size + size // 2
    result = store.save("3", first)
    assert result.saved and result.evicted_bytes == size
    assert sorted(p.name for p in store.folder.iterdir()) == ["1" + SUFFIX, "3" + SUFFIX]
    assert store.delete("1") == size and store.delete("1") == 0
    store.max_bytes = size // 2  # one chat alone over the cap is not kept
    assert not store.save("4", first).saved and not store.path("4").exists()
    assert store.clear() == size and store.total_bytes() == 0


def test_keys_are_checked(store: PromptCache) -> None:
    with pytest.raises(ValueError, match="keys"):
        store.path("../escape")
