"""Shared fixtures: tiny random LLaMA-family models (no hardware, no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own cache dir unless it asks for the real one."""
    cache = tmp_path_factory.mktemp("hwnas-cache")
    monkeypatch.setenv("HWNAS_CACHE", str(cache))
    torch.set_num_threads(1)
    return cache


@pytest.fixture
def hwnas_cache(_isolated_cache) -> Path:
    """This test's own cache dir (what ``HWNAS_CACHE`` points at)."""
    return _isolated_cache


def fake_profile_data(name: str = "fake-cpu", *, prefill=(16, 32), decode=(24, 64),
                      **fields) -> dict:
    """A hardware profile for the profilers' deterministic fake backend, as YAML data.

    ``prefill`` lists the prefill lengths and ``decode`` the decode contexts; any other top-level
    field (``backend``, ``threads``, ``timer``, ``fingerprint``, ...) replaces or adds to the
    defaults below."""
    data = {"schema_version": 1, "name": name, "device": "cpu", "backend": "fake",
            "dtype": "fp32", "threads": 1,
            "workloads": {"prefill": list(prefill),
                          "decode": [{"context": c} for c in decode]},
            "primary": {"prefill_tokens": 16, "decode_tokens": 16},
            # the fake's times are synthetic: no quiet-machine probe before each group
            "interference": {"probe_s": 0}}
    data.update(fields)
    return data


def fake_profile_yaml(name: str = "fake-cpu", **kw) -> str:
    """`fake_profile_data` as YAML text (what a profile file holds)."""
    return yaml.safe_dump(fake_profile_data(name, **kw), sort_keys=False)


@pytest.fixture
def fake_profile(hwnas_cache):
    """Install a fake-backend profile in this test's cache, so that ``--hw NAME`` finds it;
    returns the file's path (which ``--hw`` accepts as well). Takes `fake_profile_data`'s
    arguments."""
    from hwnas.paths import sub_dir

    def install(name: str = "fake-cpu", **kw) -> Path:
        path = sub_dir("hw_profiles") / f"{name}.yaml"
        path.write_text(fake_profile_yaml(name, **kw))
        return path

    return install


def tiny_config(family: str = "llama", *, layers: int = 4, hidden: int = 64,
                intermediate: int = 128, heads: int = 4, kv_heads: int = 2,
                tie: bool = False, vocab: int = 128):
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    cls = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config}[family]
    return cls(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
               num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab,
               head_dim=hidden // heads, tie_word_embeddings=tie, max_position_embeddings=256,
               eos_token_id=1, bos_token_id=0, pad_token_id=None)


def tiny_model(family: str = "llama", seed: int = 0, **kw):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family, **kw)).eval()
    # random non-zero biases so that slicing them is really tested
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0, 0.5)
    return model


TINY_VARIANTS = {
    "llama-mha": dict(family="llama", heads=4, kv_heads=4),
    "llama-gqa": dict(family="llama", heads=4, kv_heads=2, tie=True),
    "qwen2-bias": dict(family="qwen2", heads=6, kv_heads=3, hidden=48),
    "mistral-gqa": dict(family="mistral", heads=4, kv_heads=2),
}


@pytest.fixture(params=sorted(TINY_VARIANTS))
def tiny_variant(request):
    kw = dict(TINY_VARIANTS[request.param])
    return request.param, tiny_model(**kw)


# The slow real-model tests share one persistent cache of their own (the fp32 copy of the
# embedded model and its importance ordering, made once), under pytest's git-ignored cache
# folder: the suite never writes to the user's default cache. An HWNAS_CACHE set when pytest
# starts is used instead.
_SESSION_CACHE = __import__("os").environ.get("HWNAS_CACHE")
TEST_MODEL_CACHE = (Path(_SESSION_CACHE) if _SESSION_CACHE else
                    Path(__file__).resolve().parent.parent / ".pytest_cache" / "hwnas-models")


@pytest.fixture(scope="session")
def real_supernet():
    """The embedded SmolLM2-135M from the test model cache (slow tests only)."""
    import os

    from hwnas.supernet.supernet import Supernet

    old = os.environ.get("HWNAS_CACHE")
    os.environ["HWNAS_CACHE"] = str(TEST_MODEL_CACHE)
    try:
        return Supernet.load("smollm2-135m")
    finally:
        if old is None:
            os.environ.pop("HWNAS_CACHE", None)
        else:
            os.environ["HWNAS_CACHE"] = old


class FakeTokenizer:
    """Maps characters to ids: enough for calibration on tiny random models."""

    def __init__(self, vocab: int = 128) -> None:
        self.vocab = vocab

    def __call__(self, text, return_tensors=None, add_special_tokens=False):
        from types import SimpleNamespace

        ids = torch.tensor([[ord(c) % self.vocab for c in text]])
        return SimpleNamespace(input_ids=ids)


def char_tokenizer():
    """A real (fast) character-level tokenizer of 98 tokens, built offline."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {"<unk>": 0, "</s>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>")


def save_tiny_model_dir(path, family: str = "llama", **kw):
    """A local Hugging Face model directory (weights, config, tokenizer) of a tiny model."""
    model = tiny_model(family, **kw)
    model.save_pretrained(path)
    char_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def tiny_model_dir(tmp_path):
    return save_tiny_model_dir(tmp_path / "tiny-llama", heads=4, kv_heads=2)
