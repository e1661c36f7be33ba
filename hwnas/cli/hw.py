"""`hwnas hw list | show NAME | detect | validate FILE`: hardware profiles."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hwnas.cli._common import JSON_OPT, console, print_json, table

hw_app = typer.Typer(name="hw", no_args_is_help=True,
                     help="Hardware profiles: list, show, detect this machine, validate a file.")


@hw_app.command("list")
def list_cmd(as_json: bool = JSON_OPT) -> None:
    """Every profile hwnas knows (built-in and user-written)."""
    from hwnas.hw_profiles import list_profiles

    profiles = list_profiles()
    if as_json:
        print_json([{"name": p.name, "device": p.device, "backend": p.backend,
                     "dtype": p.dtype, "threads": p.threads, "batch": p.batch,
                     "primary": p.primary.describe(), "workloads": p.workloads.names(),
                     "pinned": sorted(p.fingerprint), "description": p.description}
                    for p in profiles])
        return
    table("hardware profiles", ["name", "device", "backend", "dtype", "threads", "workloads"],
          [[p.name, p.device, p.backend, p.dtype, p.threads or "all",
            "prefill " + "/".join(str(n) for n in p.workloads.prefill) + "; decode@"
            + "/".join(str(d.context) for d in p.workloads.decode)] for p in profiles])


@hw_app.command("show")
def show_cmd(name: str = typer.Argument(..., help="Profile name or YAML path."),
             as_json: bool = JSON_OPT) -> None:
    """One profile in full (YAML, or JSON with --json)."""
    from hwnas.hw_profiles import dump_profile, load_profile

    profile = load_profile(name)
    if as_json:
        print_json(profile.to_dict())
    else:
        sys.stdout.write(dump_profile(profile))


@hw_app.command("detect")
def detect_cmd(
    name: str | None = typer.Option(None, "--name", help="Profile name [default: derived "
                                                         "from the CPU or GPU model]."),
    backend: str = typer.Option("torch", "--backend", help="torch, onnxruntime, openvino, "
                                                           "ipex."),
    dtype: str | None = typer.Option(None, "--dtype", help="fp32, bf16, fp16, int8 "
                                                           "[default: fp32 on CPU, bf16 on GPU]."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda:N [default: cuda:0 "
                                                             "when torch sees a GPU]."),
    out: Path | None = typer.Option(None, "--out", help="Where to write the YAML [default: "
                                                        "the user profile folder]."),
    as_json: bool = JSON_OPT,
) -> None:
    """Write a new profile for this machine (with its fingerprint pinned)."""
    from pydantic import ValidationError

    from hwnas.errors import InputError
    from hwnas.hw_profiles import collect_fingerprint, detect, write_profile

    try:
        profile = detect(name=name, device=device, backend=backend, dtype=dtype)
    except ValidationError as e:
        from hwnas.hw_profiles.loader import _format_errors
        raise InputError(_format_errors("hw detect", e)) from None
    path = write_profile(profile, out)
    fp = collect_fingerprint(profile.device)
    if as_json:
        print_json({"path": str(path), "profile": profile.to_dict(),
                    "fingerprint": fp.to_dict()})
        return
    console.print(f"wrote {path}")
    table(f"fingerprint of this machine ({fp.key()})", ["field", "value"],
          [["cpu", fp.cpu_model], ["isa", " ".join(fp.isa)], ["cores", fp.logical_cores],
           ["memory", f"{fp.memory_gib} GiB"], ["governor", fp.governor],
           ["gpu", fp.gpu_name or "-"],
           ["libraries", ", ".join(f"{k} {v}" for k, v in fp.versions.items())],
           ["hwnas", f"{fp.hwnas_version} {fp.git_hash}"]])


@hw_app.command("validate")
def validate_cmd(path: Path = typer.Argument(..., help="YAML profile to check."),
                 as_json: bool = JSON_OPT) -> None:
    """Check a profile file; errors name the field, the value and what is allowed."""
    from hwnas.hw_profiles.loader import parse_profile_file

    if not path.is_file():
        from hwnas.errors import InputError
        raise InputError(f"hardware profile file {path}: no such file")
    profile = parse_profile_file(path)
    if as_json:
        print_json({"valid": True, "path": str(path), "profile": profile.to_dict()})
    else:
        console.print(f"{path}: valid profile '{profile.name}' ({profile.device}, "
                      f"{profile.backend}, {profile.dtype}; primary: "
                      f"{profile.primary.describe()})")


def register(app: typer.Typer) -> None:
    app.add_typer(hw_app)
