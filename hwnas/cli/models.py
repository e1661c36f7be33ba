"""`hwnas models | space | stats | export`: the super-network's commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hwnas.cli._common import JSON_OPT, MODEL_OPT, console, print_json, table
from hwnas.errors import InputError

if TYPE_CHECKING:
    from hwnas.supernet import SubnetSpec


def _space(model: str, widths: str | None):  # type: ignore[no-untyped-def]
    from hwnas.supernet import SearchSpace, arch_info
    from hwnas.supernet.models import load_config

    choices = _parse_widths(widths)  # bad input fails before any model is read
    return SearchSpace.default(arch_info(load_config(model)), widths=choices)


def _parse_widths(widths: str | None) -> list[int] | None:
    if widths is None:
        return None
    try:
        return [int(w) for w in widths.split(",") if w.strip()]
    except ValueError:
        raise InputError(f"--widths '{widths}': give comma-separated integers, "
                         "e.g. 768,1152,1536") from None


WIDTHS_OPT = typer.Option(None, "--widths", help="MLP width choices, comma-separated "
                                                 "[default: 1/2, 5/8, 3/4, 7/8, 1 of the base].")


def models(json_out: bool = JSON_OPT) -> None:
    """List the known models (any local HF directory or hub id works too)."""
    from hwnas.supernet.models import DEFAULT_MODEL, KNOWN_MODELS

    rows = [{"name": n, "description": KNOWN_MODELS.get(n).description,
             "default": n == DEFAULT_MODEL} for n in KNOWN_MODELS.names()]
    if json_out:
        print_json(rows)
        return
    table("models", ["name", "default", "description"],
          [[r["name"], "yes" if r["default"] else "", r["description"]] for r in rows])
    console.print("Also: any local Hugging Face model directory or hub id of a Llama, Mistral "
                  "or Qwen2 causal LM.")


def space(model: str = MODEL_OPT, widths: str | None = WIDTHS_OPT,
          json_out: bool = JSON_OPT) -> None:
    """Show the search space of a model."""
    sp = _space(model, widths)
    data = {"model": model, "arch": sp.arch.to_dict(), **sp.to_dict(),
            "full": sp.full().to_dict()}
    if json_out:
        print_json(data)
        return
    a = sp.arch
    table(f"search space of {model}", ["choice", "values"], [
        ["layers (keep or drop each)", f"{a.num_layers} (min {sp.min_layers} kept)"],
        ["MLP intermediate size", ", ".join(map(str, sp.width_choices))],
        ["KV groups kept", f"{', '.join(map(str, sp.kv_choices))} "
                           f"({a.q_per_kv} query heads each)"],
        ["integer genes (pymoo)", str(sp.n_var)],
        ["distinct subnets", f"{float(sp.size()):.3e}"]])


SUBNET_OPT = typer.Option(..., "--subnet", "-s", help="Subnet JSON, inline or a file path.")


def stats(model: str = MODEL_OPT, subnet: str = SUBNET_OPT,
          dtype: str = typer.Option("fp32", "--dtype", help="fp32, bf16, fp16 or int8."),
          widths: str | None = WIDTHS_OPT, json_out: bool = JSON_OPT) -> None:
    """Parameters, layers, FLOPs and weight bytes for one token of a subnet (analytic)."""
    from hwnas.supernet import SubnetSpec, subnet_stats
    from hwnas.supernet.stats import DTYPE_BYTES

    if dtype not in DTYPE_BYTES:
        raise InputError(f"--dtype '{dtype}': not one of {', '.join(DTYPE_BYTES)}")
    parsed = SubnetSpec.parse(subnet)
    sp = _space(model, widths)
    spec = sp.validate(parsed)
    s = subnet_stats(sp.arch, spec, dtype)
    full = subnet_stats(sp.arch, sp.full(), dtype)
    data = {**s.to_dict(), "subnet": spec.to_dict(), "key": spec.key(),
            "params_ratio_vs_full": s.params / full.params}
    if json_out:
        print_json(data)
        return
    table(f"subnet {spec.key()} of {model}", ["figure", "value"],
          [[k, f"{v:,}" if isinstance(v, int) else v] for k, v in s.to_dict().items()]
          + [["size vs full model", f"{data['params_ratio_vs_full']:.3f}"]])


def export(model: str = MODEL_OPT,
           subnet: str | None = typer.Option(None, "--subnet", "-s",
                                             help="Subnet JSON, inline or a file path."),
           run: str | None = typer.Option(None, "--run", help="Take the subnet from a "
                                          "search run's Pareto set (with --pick)."),
           pick: int | None = typer.Option(None, "--pick", help="1-based index in the run's "
                                           "Pareto set (see `hwnas runs show RUN`)."),
           out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
           padded: bool = typer.Option(False, "--padded", help="Stock full-width Llama with "
                                       "pruned weights zeroed: exact, but larger and not "
                                       "faster."),
           verify: bool = typer.Option(True, "--verify/--no-verify",
                                       help="Reload, compare logits, generate."),
           repair: str | None = typer.Option(None, "--repair", help="none, or ls: fold the "
                                             "training-free least-squares repair into the "
                                             "weights [default: the run's, with --run; else "
                                             "none]."),
           overwrite: bool = typer.Option(False, "--overwrite",
                                          help="Replace an earlier hwnas export in --out (only "
                                               "the files its sidecar lists; yours stay)."),
           widths: str | None = WIDTHS_OPT, json_out: bool = JSON_OPT) -> None:
    """Write a subnet as a Hugging Face model directory (safetensors), then verify it."""
    from hwnas.supernet.export import SIDECAR, export
    from hwnas.supernet.outdir import check_target
    from hwnas.supernet.supernet import Supernet

    check_target(out.expanduser(), SIDECAR, overwrite)  # before any model is loaded
    model, spec, run_repair = _export_target(model, subnet, run, pick)
    sn = Supernet.load(model, widths=_parse_widths(widths))
    sn.validate(spec)
    info = export(sn, spec, out, padded=padded, verify=verify, repair=repair or run_repair,
                  overwrite=overwrite)
    if json_out:
        print_json(info.to_dict())
        return
    table(f"exported {spec.key()}", ["field", "value"],
          [[k, v] for k, v in info.to_dict().items()])
    how = ("stock transformers (no hwnas needed)" if info.stock_loadable
           else "AutoModelForCausalLM after `import hwnas`")
    console.print(f"Load it with {how}: AutoModelForCausalLM.from_pretrained('{out}')")


def _export_target(model: str, subnet: str | None, run: str | None,
                   pick: int | None) -> tuple[str, SubnetSpec, str]:
    """The model, the subnet and the repair a run evaluated it with ("none" for --subnet)."""
    from hwnas.supernet import SubnetSpec

    if (subnet is None) == (run is None):
        raise InputError("give either --subnet SPEC or --run RUN --pick K")
    if subnet is not None:
        if pick is not None:
            raise InputError("--pick goes with --run, not with --subnet")
        return model, SubnetSpec.parse(subnet), "none"
    if pick is None:
        raise InputError(f"--run {run} needs --pick K (see `hwnas runs show {run}`)")
    from hwnas.search.config import SearchConfig
    from hwnas.search.runs import pick as pick_subnet
    from hwnas.store import open_store

    with open_store() as store:
        name, spec = pick_subnet(store, str(run), pick)
        stored = store.run_config(str(run))
        repair = SearchConfig.from_dict(stored).repair if stored is not None else "none"
        return name, spec, repair


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("space")(space)
    app.command("stats")(stats)
    app.command("export")(export)
