"""Crash safety: `kill -9` and Ctrl-C during `hwnas profile`, then a re-run. The final store
equals an uninterrupted run's: same keys, no duplicates. Uses the fake backend in
subprocesses (the real backend is exercised by benchmarks/bench_profile_crash.py)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import fake_profile_yaml
from transformers import LlamaConfig

RUN = ("import importlib.util, sys, hwnas.cli as c; "
       "c.COMMAND_MODULES = tuple(m for m in c.COMMAND_MODULES if importlib.util.find_spec(m)); "
       "sys.exit(c.main(sys.argv[1:]))")


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    model = tmp_path / "tiny"
    LlamaConfig(hidden_size=64, intermediate_size=128, num_attention_heads=4,
                num_key_value_heads=2, num_hidden_layers=2, vocab_size=256,
                max_position_embeddings=256).save_pretrained(model)
    hw = tmp_path / "fake-cpu.yaml"
    hw.write_text(fake_profile_yaml())
    return hw, model


def _cmd(cache: Path, hw: Path, model: Path) -> list[str]:
    return [sys.executable, "-c", RUN, "--cache-dir", str(cache), "profile", "--hw", str(hw),
            "--model", str(model), "--json"]


def _env(**fake) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HWNAS_CACHE", None)
    env["HWNAS_FAKE_BACKEND"] = json.dumps(fake)
    return env


def _rows(cache: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(cache / "store.sqlite")
    return sorted(db.execute("SELECT key, kind FROM measurements").fetchall())


def _run(cache: Path, hw: Path, model: Path, **fake) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(cache, hw, model), env=_env(**fake), capture_output=True,
                          text=True, timeout=300)


def test_kill_9_then_rerun_equals_uninterrupted(tmp_path, files):
    hw, model = files
    ref = _run(tmp_path / "ref", hw, model)
    assert ref.returncode == 0, ref.stderr
    expected = _rows(tmp_path / "ref")
    assert len(expected) == json.loads(ref.stdout)["total"]

    killed = _run(tmp_path / "crash", hw, model, kill_after_prepares=10)
    assert killed.returncode == -signal.SIGKILL
    partial = _rows(tmp_path / "crash")
    assert 0 < len(partial) < len(expected)

    again = _run(tmp_path / "crash", hw, model)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["already"] == len(partial) and summary["complete"]
    assert summary["measured"] == len(expected) - len(partial)
    assert _rows(tmp_path / "crash") == expected  # same keys, same kinds, no duplicates


def test_ctrl_c_then_rerun_resumes(tmp_path, files):
    hw, model = files
    cache = tmp_path / "c"
    proc = subprocess.Popen(_cmd(cache, hw, model), env=_env(sleep=True, overhead_ms=25.0),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell may start us with SIGINT ignored; Ctrl-C needs the default
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for the first records
        try:
            if (cache / "store.sqlite").exists() and _rows(cache):
                break
        except sqlite3.OperationalError:  # created, schema not written yet
            pass
        time.sleep(0.2)
    assert proc.poll() is None, "the profile run ended before it was interrupted"
    assert _rows(cache), "no record within the deadline"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "re-run the same command to resume" in err
    assert "Traceback" not in err
    done = len(_rows(cache))
    again = _run(cache, hw, model)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["complete"] and summary["already"] == done
    assert 0 < done < summary["total"]  # interrupted mid-run: the re-run had work left
    assert summary["measured"] == summary["total"] - done
    assert len(_rows(cache)) == summary["total"]
