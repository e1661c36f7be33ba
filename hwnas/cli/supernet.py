"""`hwnas supernet train`: distil the base model into its super-network once (see
`hwnas.supernet.train`); the output folder is a model every command takes as --model DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import (
    JSON_OPT,
    MODEL_OPT,
    console,
    err_console,
    fail,
    print_json,
    table,
)
from hwnas.errors import InputError

supernet_app = typer.Typer(name="supernet", no_args_is_help=True,
                           help="Train the super-network (weight-shared subnets).")


def _band(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--band '{text}': give two speed-ups, e.g. 1.1,2") from None
    return lo, hi


def _minutes(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--snapshot-minutes '{text}': give minutes separated by commas, "
                         "e.g. 10,30") from None


class _Bar:
    """A rich progress bar with tokens/s, loss and ETA, on stderr."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self.enabled, self.total = enabled, total

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), console=err_console)
            self.bar.__enter__()
            self.task = self.bar.add_task("train", total=self.total, info="")
        return self

    def __call__(self, p: Any) -> None:
        if not self.enabled:
            return
        eta = "?" if p.eta_s is None else f"{p.eta_s / 60:.1f} min"
        self.bar.update(self.task, completed=p.step,
                        info=f"loss {p.loss:.4f} · {p.tokens_per_s:.0f} tok/s · "
                             f"{p.tokens:,} tokens · ETA {eta}")

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(None, None, None)


@supernet_app.command("train")
def train_cmd(
    model: str = MODEL_OPT,
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: a model directory."),
    minutes: float | None = typer.Option(None, "--minutes", help="Train for N minutes of "
                                         "wall time (summed over resumes)."),
    steps: int | None = typer.Option(None, "--steps", help="Train for N optimiser steps."),
    tokens: int | None = typer.Option(None, "--tokens", help="Train on N tokens."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly."),
    text: Path | None = typer.Option(None, "--text", help="Training text (.txt: documents "
                                     "separated by blank lines; .jsonl: {\"text\": ...}) "
                                     "[default: bundled CoQA/SQuAD/DROP passages]."),
    seq_len: int = typer.Option(256, "--seq-len"),
    batch: int = typer.Option(4, "--batch", help="Sequences per micro-batch."),
    accum: int = typer.Option(1, "--accum", help="Micro-batches per optimiser step."),
    lr: float = typer.Option(5e-5, "--lr"),
    warmup: int = typer.Option(0, "--warmup", help="Linear warm-up steps."),
    schedule: str = typer.Option("constant", "--schedule", help="constant, or cosine (decay "
                                 "to --min-lr-ratio x lr at the end of the budget)."),
    min_lr_ratio: float = typer.Option(0.1, "--min-lr-ratio"),
    temperature: float = typer.Option(1.0, "--temperature", help="Distillation temperature."),
    lm_weight: float = typer.Option(0.0, "--lm-weight", help="Weight of the plain LM loss."),
    random_subnets: int = typer.Option(1, "--random-subnets", min=0, help="Random band "
                                       "subnets per step besides the full and the smallest."),
    band: str = typer.Option("1.1,2", "--band", help="Speed-up band of the sampled subnets "
                             "(by --hw's latency predictor, else the weight-bytes proxy)."),
    hw: str | None = typer.Option(None, "--hw", help="Measure the band by this hardware "
                                  "profile's trained latency predictor (`hwnas predictors "
                                  "train` first)."),
    sampler: str = typer.Option("influence", "--sampler", help="Which layers sampled subnets "
                                "drop: influence (low block influence first, at random), ranked "
                                "(the k least influential: nested depth, widths mostly "
                                "full) or uniform."),
    rule: str = typer.Option("sandwich", "--rule", help="What each step trains: sandwich "
                             "(the full network, the band's smallest end and the random "
                             "subnets) or alternate (LLaMA-NAS: the full network, then one "
                             "random subnet, in turn)."),
    bf16: str = typer.Option("auto", "--bf16", help="auto, on or off (autocast)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N (bf16 autocast "
                               "where the device has it)."),
    lora: bool = typer.Option(False, "--lora", help="Train low-rank adapters of every "
                              "linear layer instead of all weights; teacher and student "
                              "share one copy of the weights (for 7B-class memory). The "
                              "published model has the adapters folded in."),
    lora_rank: int = typer.Option(16, "--lora-rank", help="Adapter rank (with --lora)."),
    lora_alpha: float = typer.Option(32.0, "--lora-alpha", help="Adapter scale numerator: "
                                     "the update is alpha / rank * B @ A (with --lora)."),
    seed: int = typer.Option(0, "--seed"),
    save_every: int = typer.Option(50, "--save-every", help="Checkpoint every N steps."),
    snapshot_minutes: str = typer.Option("", "--snapshot-minutes", help="Also publish the "
                                         "model at these wall times, e.g. 10,30: "
                                         "OUT/snapshot-10min/ is then a model directory too."),
    json_out: bool = JSON_OPT,
) -> None:
    """Distil the model into its super-network: `--model M --out DIR --minutes N`."""
    from hwnas.supernet.train import TrainConfig, train
    from hwnas.supernet.train.loop import training_device

    cfg = TrainConfig(model=model, out=str(out), steps=steps, minutes=minutes, tokens=tokens,
                      seq_len=seq_len, batch=batch, accum=accum, lr=lr, warmup=warmup,
                      schedule=schedule, min_lr_ratio=min_lr_ratio,
                      temperature=temperature, lm_weight=lm_weight,
                      random_subnets=random_subnets, band=_band(band), hw=hw,
                      sampler=sampler, rule=rule, seed=seed, bf16=bf16,
                      device=device, lora=lora, lora_rank=lora_rank,
                      lora_alpha=lora_alpha, text=None if text is None else str(text),
                      save_every=save_every, snapshot_minutes=_minutes(snapshot_minutes))
    training_device(cfg.device)  # before the progress bar: a missing GPU is a one-line error
    cost = None
    if cfg.hw is not None:
        from hwnas.predictors import api

        cost = api.latency_function(api.resolve_target(cfg.hw, cfg.model), "--hw: ")
    try:
        with _Bar(not json_out, steps) as bar:
            result = train(cfg, resume=resume, progress=bar, cost=cost)
    except KeyboardInterrupt:
        fail(f"interrupted; checkpoint saved in {out}/checkpoint. Continue exactly with the "
             "same command plus --resume")
        raise typer.Exit(130) from None
    if json_out:
        print_json(result.to_dict())
        return
    table(f"trained super-network in {out}", ["field", "value"],
          [[k, v] for k, v in result.to_dict().items()])
    console.print(f"Use it as --model {out} (stats, evaluate, export, profile, search).")


def register(app: typer.Typer) -> None:
    app.add_typer(supernet_app)
