"""`hwnas export` never loses a user's data (issue 14): it writes into a fresh temporary folder
beside the target and renames it into place; a non-empty --out is refused unless --overwrite,
and then only the files hwnas lists in its sidecar are replaced; a kill mid-write leaves the
earlier export, or the empty target, intact."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from hwnas.cli import main

SPEC = json.dumps({"layers": [0, 2, 3], "intermediate_size": [64, 128, 64],
                   "kv_heads": [1, 2, 2]})
SPEC2 = json.dumps({"layers": [0, 1], "intermediate_size": [128, 128], "kv_heads": [2, 2]})


def run(capsys, *argv):
    capsys.readouterr()  # drop what fixtures printed
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def export(capsys, model_dir, out, *extra, spec=SPEC):
    return run(capsys, "export", "--model", str(model_dir), "--subnet", spec, "--out", str(out),
               "--no-verify", "--json", *extra)


def one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwnas: error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_issue_repro_a_fake_sidecar_does_not_cost_the_thesis(capsys, tiny_model_dir, tmp_path):
    user = tmp_path / "exp" / "userdir"
    user.mkdir(parents=True)
    (user / "hwnas_subnet.json").write_text("{}")
    (user / "thesis.tex").write_text("thesis")
    code, _, err = export(capsys, tiny_model_dir, user)
    one_line_error(code, err, str(user), "--overwrite")
    code, _, err = export(capsys, tiny_model_dir, user, "--overwrite")
    one_line_error(code, err, "does not list the files")
    assert (user / "thesis.tex").read_text() == "thesis"
    assert sorted(p.name for p in user.iterdir()) == ["hwnas_subnet.json", "thesis.tex"]


def test_a_sibling_named_partial_is_not_deleted(capsys, tiny_model_dir, tmp_path):
    partial = tmp_path / "out.partial"
    partial.mkdir()
    (partial / "mine.txt").write_text("keep")
    code, out, err = export(capsys, tiny_model_dir, tmp_path / "out")
    assert code == 0, err
    assert (partial / "mine.txt").read_text() == "keep"
    assert (tmp_path / "out" / "config.json").is_file()
    # no temporary folder is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.partial", "tiny-llama"]


def test_overwrite_replaces_only_hwnas_files(capsys, tiny_model_dir, tmp_path):
    out = tmp_path / "e"
    assert export(capsys, tiny_model_dir, out)[0] == 0
    first = tree(out)
    (out / "notes.md").write_text("my notes")
    code, _, err = export(capsys, tiny_model_dir, out, spec=SPEC2)
    one_line_error(code, err, "--overwrite")
    assert tree(out) == {**first, "notes.md": tree(out)["notes.md"]}
    code, _, err = export(capsys, tiny_model_dir, out, "--overwrite", spec=SPEC2)
    assert code == 0, err
    assert (out / "notes.md").read_text() == "my notes"
    side = json.loads((out / "hwnas_subnet.json").read_text())
    assert side["subnet"] == json.loads(SPEC2) and "notes.md" not in side["files"]
    assert set(side["files"]) == set(tree(out)) - {"notes.md"}
    assert tree(out)["model.safetensors"] != first["model.safetensors"]


def test_overwrite_refuses_to_replace_a_file_hwnas_did_not_write(capsys, tiny_model_dir,
                                                                 tmp_path):
    out = tmp_path / "e"
    assert export(capsys, tiny_model_dir, out)[0] == 0
    side = json.loads((out / "hwnas_subnet.json").read_text())
    side["files"].remove("config.json")  # as if the user had put their own config there
    (out / "hwnas_subnet.json").write_text(json.dumps(side))
    before = tree(out)
    code, _, err = export(capsys, tiny_model_dir, out, "--overwrite", spec=SPEC2)
    one_line_error(code, err, "config.json", "did not write")
    assert tree(out) == before


def test_out_naming_a_file_and_an_empty_folder(capsys, tiny_model_dir, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    code, _, err = export(capsys, tiny_model_dir, f)
    one_line_error(code, err, str(f), "is a file")
    assert f.read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(capsys, tiny_model_dir, empty)[0] == 0
    assert (empty / "model.safetensors").is_file()


def test_exported_files_have_the_usual_modes(capsys, tiny_model_dir, tmp_path):
    old = os.umask(0o022)
    try:
        assert export(capsys, tiny_model_dir, tmp_path / "e")[0] == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "e").iterdir()}
    assert modes["model.safetensors"] == 0o644
    assert set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE((tmp_path / "e").stat().st_mode) == 0o755


RUN = "import sys, hwnas.cli as c; sys.exit(c.main(sys.argv[1:]))"


def _killed_export(cache: Path, model_dir: Path, out: Path, flag: Path, *extra: str) -> None:
    env = dict(os.environ, HWNAS_TEST_EXPORT_PAUSE=str(flag))
    env.pop("HWNAS_CACHE", None)
    proc = subprocess.Popen([sys.executable, "-c", RUN, "--cache-dir", str(cache), "export",
                             "--model", str(model_dir), "--subnet", SPEC2, "--out", str(out),
                             "--no-verify", *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not flag.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_export_killed_mid_write_leaves_the_earlier_export_or_the_empty_target(
        capsys, tiny_model_dir, tmp_path):
    cache = Path(os.environ["HWNAS_CACHE"])
    earlier = tmp_path / "earlier"
    assert export(capsys, tiny_model_dir, earlier)[0] == 0
    (earlier / "notes.md").write_text("mine")
    before = tree(earlier)
    _killed_export(cache, tiny_model_dir, earlier, tmp_path / "flag1", "--overwrite")
    assert tree(earlier) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    _killed_export(cache, tiny_model_dir, empty, tmp_path / "flag2")
    assert list(empty.iterdir()) == []
    # the killed calls' temporary folders are left (nothing is deleted that a call did not
    # create), and a new export still works beside them
    assert export(capsys, tiny_model_dir, empty)[0] == 0
    assert (empty / "model.safetensors").is_file()


