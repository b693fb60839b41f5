"""The remote backend against OSS Desk's own server (oss-desk-serve) on loopback: the real engine
on the tiny synthetic model with scripted tokens, the real openai client on both APIs."""

from __future__ import annotations

import pytest

from app.remote_client import RemoteError, ServerConfig, probe
from app.remote_session import RemoteSession
from engine import ChannelDelta, TurnFinished
from tests.server.conftest import KEY, MODEL_ID, Served


@pytest.mark.parametrize("responses", [True, False], ids=["responses", "chat"])
def test_a_turn_through_our_server_streams_reasoning_answer_and_effort(
    own_server: Served, responses: bool
) -> None:
    config = ServerConfig(own_server.base_url, KEY, MODEL_ID)
    found = probe(config)
    assert found.models == (MODEL_ID,)
    assert found.responses
    own_server.reply("Blue light scatters more.", analysis="Rayleigh scattering.")
    session = RemoteSession(config, responses=responses)
    session.set_effort("high")
    events = list(session.send("Why is the sky blue?"))
    analysis = "".join(
        e.text for e in events if isinstance(e, ChannelDelta) and e.channel != "final"
    )
    answer = "".join(e.text for e in events if isinstance(e, ChannelDelta) and e.channel == "final")
    assert analysis == "Rayleigh scattering."
    assert answer == "Blue light scatters more."
    finished = events[-1]
    assert isinstance(finished, TurnFinished) and finished.reason == "stop"
    assert "Reasoning: high" in own_server.prompt_text()
    assert "Why is the sky blue?" in own_server.prompt_text()


def test_our_server_refuses_a_wrong_token_in_one_sentence(own_server: Served) -> None:
    with pytest.raises(RemoteError) as caught:
        probe(ServerConfig(own_server.base_url, "wrong-token", MODEL_ID))
    assert caught.value.kind == "unauthorized"
