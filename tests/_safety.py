"""Helpers of the safety tests (issue 14): the CLI in-process with its stdout and stderr, the
one-line-error check, and the CLI as an unprivileged user (permissions mean nothing to root)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from hwnas.cli import main

FAKE_PROFILE = """schema_version: 1
name: {name}
device: cpu
backend: fake
dtype: fp32
threads: 1
workloads:
  prefill: [16, 32]
  decode: [{{context: 24}}]
primary: {{prefill_tokens: 16, decode_tokens: 16}}
interference: {{probe_s: 0}}
"""


def cli(*argv: str) -> tuple[int, str, str]:
    """`hwnas ARGV` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, (code, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("hwnas: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


RUN = "import sys, hwnas.cli as c; sys.exit(c.main(sys.argv[1:]))"


def cli_unprivileged(*argv: str, env: dict[str, str] | None = None
                     ) -> subprocess.CompletedProcess[str]:
    """`hwnas ARGV` in a subprocess, as user nobody when this runs as root (so that file
    permissions apply)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all"]
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([*prefix, sys.executable, "-c", RUN, *map(str, argv)], env=full_env,
                          capture_output=True, text=True, timeout=300, cwd="/tmp")


def train_tiny_predictor(d: Path) -> Path:
    """A config-only 8-layer Llama written to `d`, with a `cpu-torch-fp32` latency predictor
    trained on synthetic layer records in the current cache; returns the predictor's folder."""
    from test_predictors_synth import fill_layers
    from transformers import LlamaConfig

    from hwnas.predictors import api
    from hwnas.predictors.persist import latency_dir
    from hwnas.store import open_store

    LlamaConfig(hidden_size=128, intermediate_size=512, num_attention_heads=4,
                num_key_value_heads=2, num_hidden_layers=8, vocab_size=1000,
                tie_word_embeddings=True).save_pretrained(d)
    t = api.resolve_target("cpu-torch-fp32", str(d))
    with open_store() as store:
        fill_layers(store, t.hw, t.arch)
        api.train(t, store)
    return latency_dir(t.hw.name, t.arch_key)
