"""The training loop: KL distillation from the frozen base model into its super-network.

Each optimiser step: `accum` micro-batches; for each, the teacher's logits once, then the
full network and the sampled subnets (sandwich, `sampler`) run on the shared weights
(`view`) and their losses are back-propagated together. The output directory is a plain
Hugging Face model directory (weights, config, tokenizer; with `--lora`, the
adapters folded into the weights) plus `hwnas_importance.json`
(the base model's importance order, so subnets of the trained model are cut exactly as they
were trained), `hwnas_supernet.json` (how it was made), `loss_curve.png` and `checkpoint/`;
`--snapshot-minutes` adds `snapshot-<N>min/`, the same kind of directory, published once the
run's wall time passes N minutes.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

import hwnas
from hwnas.errors import InputError
from hwnas.supernet.importance import influence_order
from hwnas.supernet.supernet import IMPORTANCE_FILE, cached_block_influence
from hwnas.supernet.train import checkpoint as ckpt
from hwnas.supernet.train.allocator import reuse_freed_memory
from hwnas.supernet.train.config import STOPPING, TrainConfig
from hwnas.supernet.train.data import Batches, pack, training_documents
from hwnas.supernet.train.lora import adapters_off, add_adapters, merged_state_dict
from hwnas.supernet.train.sampler import BandSampler, CostFn, influence_weights, proxy_cost
from hwnas.supernet.train.view import subnet_view

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from hwnas.supernet.supernet import Supernet

INFO_FILE = "hwnas_supernet.json"
CURVE_FILE = "loss_curve.png"


@dataclass(frozen=True)
class Progress:
    step: int
    total_steps: int | None
    tokens: int
    tokens_per_s: float
    loss: float
    eta_s: float | None


@dataclass(frozen=True)
class TrainResult:
    out_dir: str
    steps: int
    tokens: int
    seconds: float
    first_loss: float | None
    last_loss: float | None
    bf16: bool

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TeacherTargets:
    """The teacher's distribution over one micro-batch, computed once for every student."""

    probs: torch.Tensor  # softmax(teacher / T), float32
    neg_entropy: torch.Tensor  # sum_v p log p per token
    temperature: float


def teacher_targets(teacher: torch.Tensor, temperature: float) -> TeacherTargets:
    logp = F.log_softmax(teacher.float() / temperature, dim=-1)
    probs = logp.exp()
    return TeacherTargets(probs, (probs * logp).sum(-1), temperature)


def kd_loss(student: torch.Tensor, target: TeacherTargets) -> torch.Tensor:
    """T^2 * KL(teacher || student) over the full vocabulary, mean over tokens.

    KL = sum p log p - sum p log q, and log q = z - logsumexp(z) with sum p = 1, so the
    student's side is one dot product and one log-sum-exp: no log-softmax tensor of the
    vocabulary's size is kept for backward (its gradient is softmax(z) - p all the same).
    """
    t = target.temperature
    z = student.float() / t
    kl = target.neg_entropy - (target.probs * z).sum(-1) + torch.logsumexp(z, dim=-1)
    return kl.mean() * (t * t)


def lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                           ids[:, 1:].reshape(-1))


def use_bf16(setting: str, device: torch.device | None = None) -> bool:
    if setting == "off":
        return False
    on_gpu = device is not None and device.type == "cuda"
    supported = bool(torch.cuda.is_bf16_supported() if on_gpu
                     else torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if setting == "on" and not supported:
        where = "GPU" if on_gpu else "CPU"
        raise InputError(f"--bf16 on: this {where} has no native bf16 support; use --bf16 off")
    return supported


def training_device(name: str) -> torch.device:
    """The device `--device` names, checked: CUDA must be there to be asked for."""
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: this machine has no CUDA device that torch can "
                             "use (torch.cuda.is_available() is false); use --device cpu, or "
                             "install a CUDA build of torch")
        if (device.index or 0) >= torch.cuda.device_count():
            raise InputError(f"--device {name}: only {torch.cuda.device_count()} CUDA "
                             "device(s) here; give cuda:0 ... cuda:N-1")
    return device


def band_sampler(cfg: TrainConfig, sn: Supernet, cost: CostFn | None = None) -> BandSampler:
    """The run's sampler. Layer drops follow the base model's block influence on the
    calibration text: in proportion to its inverse (`influence`), or nested in its order
    (`ranked`); `uniform` treats every layer alike."""
    cost = cost or proxy_cost(sn.space)
    if cfg.sampler == "uniform":
        return BandSampler(sn.space, cfg.band, cost)
    assert sn.tokenizer is not None
    bi = cached_block_influence(sn.model, sn.tokenizer, sn.fingerprint)
    if cfg.sampler == "ranked":
        return BandSampler(sn.space, cfg.band, cost, drop_order=influence_order(bi))
    return BandSampler(sn.space, cfg.band, cost, influence_weights(bi))


def _check_out(out: Path, resume: bool) -> None:
    if resume:
        if ckpt.find(out) is None:
            raise InputError(f"--resume: {out} holds no checkpoint; start without --resume")
        return
    if out.exists() and any(out.iterdir()):
        hint = " or pass --resume to continue it" if ckpt.find(out) is not None else ""
        raise InputError(f"--out {out}: folder exists and is not empty; give a new folder"
                         f"{hint}")


def _done(cfg: TrainConfig, st: ckpt.TrainState, elapsed: float) -> bool:
    if cfg.steps is not None:
        return st.step >= cfg.steps
    if cfg.tokens is not None:
        return st.tokens >= cfg.tokens
    assert cfg.minutes is not None
    return elapsed >= cfg.minutes * 60.0


def _eta(cfg: TrainConfig, st: ckpt.TrainState, elapsed: float, per_step: float,
         tok_s: float) -> float | None:
    if cfg.steps is not None:
        return (cfg.steps - st.step) * per_step
    if cfg.tokens is not None:
        return (cfg.tokens - st.tokens) / max(tok_s, 1e-9)
    return None if cfg.minutes is None else max(0.0, cfg.minutes * 60.0 - elapsed)


def train(cfg: TrainConfig, resume: bool = False, sn: Supernet | None = None,
          cost: CostFn | None = None, progress: Callable[[Progress], None] | None = None
          ) -> TrainResult:
    """Train (or resume) a super-network. `sn` may pass an already loaded base model."""
    from hwnas.supernet.supernet import Supernet

    out = Path(cfg.out).expanduser()
    _check_out(out, resume)
    device = training_device(cfg.device)
    if resume:
        found = ckpt.find(out)
        assert found is not None
        meta = ckpt.read_meta(found)
        old = TrainConfig.from_dict(meta["config"])
        if old.identity() != cfg.identity():
            diff = [k for k, v in cfg.to_dict().items()
                    if k not in STOPPING and old.to_dict().get(k) != v]
            raise InputError(f"--resume: the run in {out} was made with other settings "
                             f"({', '.join(diff)}); resume with the same ones")
    if sn is None:
        sn = Supernet.load(cfg.model)
    if sn.tokenizer is None:
        raise InputError(f"model '{cfg.model}' has no tokenizer; training needs one")
    if device.type == "cpu":
        reuse_freed_memory()
    torch.manual_seed(cfg.seed)
    teacher = sn.model.eval().requires_grad_(False)
    torch.nn.Module.to(teacher, device)
    sampler = band_sampler(cfg, sn, cost)  # on the base model, before any adapter
    if cfg.lora:  # one model: the adapters learn, the teacher is the model with them off
        student = teacher
        add_adapters(student, cfg.lora_rank, cfg.lora_alpha)
        student.train()
    else:
        student = copy.deepcopy(teacher).train().requires_grad_(True)
    if hasattr(student.config, "use_cache"):
        student.config.use_cache = False
    bf16 = use_bf16(cfg.bf16, device)
    seqs = pack(training_documents(cfg.text, cfg.max_documents), sn.tokenizer, cfg.seq_len)
    batches = Batches(seqs, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    st = ckpt.TrainState()
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        found = ckpt.find(out)
        assert found is not None
        st = ckpt.load(found, student, opt)
        batches.cursor = st.cursor
        rng.bit_generator.state = st.numpy_rng

    def save() -> None:
        st.cursor = batches.cursor
        st.numpy_rng = dict(rng.bit_generator.state)
        ckpt.save(out, student, opt, st, cfg.identity(), cfg.to_dict())

    start = time.perf_counter()
    base_seconds = st.seconds
    tokens_per_step = cfg.batch * cfg.seq_len * cfg.accum
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    session_tokens = 0
    try:
        while not _done(cfg, st, base_seconds + time.perf_counter() - start):
            snap = (batches.cursor, copy.deepcopy(rng.bit_generator.state), torch.get_rng_state())
            try:
                logs = _step(cfg, st, teacher, student, opt, sn, sampler, rng, batches, autocast)
            except KeyboardInterrupt:
                batches.cursor, rng.bit_generator.state = snap[0], snap[1]
                torch.set_rng_state(snap[2])
                opt.zero_grad(set_to_none=True)
                raise
            st.step += 1
            st.tokens += tokens_per_step
            session_tokens += tokens_per_step
            elapsed = time.perf_counter() - start
            st.seconds = base_seconds + elapsed
            st.losses.append(logs)
            if st.step % cfg.save_every == 0:
                save()
            for minutes in cfg.snapshot_minutes:
                published = out / snapshot_dir(minutes)
                if st.seconds >= minutes * 60.0 and not published.exists():
                    publish(published, student, sn, cfg, st, bf16, sampler.drop_order)
                    student.train()
            if progress is not None:
                tok_s = session_tokens / max(elapsed, 1e-9)
                per_step = elapsed / max(1, session_tokens // tokens_per_step)
                progress(Progress(st.step, cfg.steps, st.tokens, tok_s, float(logs["total"] or 0),
                                  _eta(cfg, st, st.seconds, per_step, tok_s)))
    except KeyboardInterrupt:
        st.seconds = base_seconds + time.perf_counter() - start
        save()
        raise
    save()
    publish(out, student, sn, cfg, st, bf16, sampler.drop_order)
    first = st.losses[0]["total"] if st.losses else None
    last = st.losses[-1]["total"] if st.losses else None
    return TrainResult(str(out), st.step, st.tokens, st.seconds, first, last, bf16)


def _step(cfg: TrainConfig, st: ckpt.TrainState, teacher: PreTrainedModel,
          student: PreTrainedModel, opt: torch.optim.Optimizer, sn: Supernet,
          sampler: BandSampler, rng: np.random.Generator, batches: Batches,
          autocast: torch.autocast) -> dict[str, float | None]:
    lr = cfg.learning_rate(st.step, st.tokens, st.seconds)
    for group in opt.param_groups:
        group["lr"] = lr
    plan = sampler.plan(rng, cfg.rule, st.step, cfg.random_subnets)
    weights = [cfg.full_weight if role == "full" else 1.0 for role, _ in plan]
    norm = sum(weights) * cfg.accum
    sums = [0.0] * len(plan)
    for _ in range(cfg.accum):
        ids = batches.next(cfg.batch).to(model_device(student))
        with torch.no_grad(), autocast, adapters_off(teacher):
            target = teacher_targets(teacher(ids, use_cache=False).logits, cfg.temperature)
        for n, ((_, spec), w) in enumerate(zip(plan, weights, strict=True)):
            with subnet_view(student, sn.arch, sn.importance, spec) as m, autocast:
                logits = m(ids, use_cache=False).logits
            loss = kd_loss(logits, target)
            if cfg.lm_weight:
                loss = loss + cfg.lm_weight * lm_loss(logits, ids)
            (loss * (w / norm)).backward()
            sums[n] += float(loss.detach()) / cfg.accum
    opt.step()
    opt.zero_grad(set_to_none=True)
    total = sum(w * s for w, s in zip(weights, sums, strict=True)) / sum(weights)

    def role(name: str) -> float | None:  # None where this step trained no such subnet
        got = [s for (r, _), s in zip(plan, sums, strict=True) if r == name]
        return float(np.mean(got)) if got else None

    return {"total": total, "full": role("full"), "smallest": role("smallest"),
            "random": role("random"), "lr": lr}


def model_device(model: PreTrainedModel) -> torch.device:
    return next(model.parameters()).device


def snapshot_dir(minutes: float) -> str:
    """Where `--snapshot-minutes` puts the model published at that wall time, inside --out."""
    return f"snapshot-{minutes:g}min"


def publish(out: Path, student: PreTrainedModel, sn: Supernet, cfg: TrainConfig,
            st: ckpt.TrainState, bf16: bool, layer_order: tuple[int, ...] | None = None
            ) -> None:
    """Write the trained weights as a Hugging Face model directory (files replaced one by
    one after they are complete in a temporary folder). The importance file carries the
    layer order a nested-depth run dropped layers in, so a search cuts it the same way."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".publish.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    student.eval()
    student.save_pretrained(tmp, state_dict=merged_state_dict(student) if cfg.lora else None)
    if sn.tokenizer is not None:
        sn.tokenizer.save_pretrained(tmp)
    importance = sn.importance if layer_order is None else replace(
        sn.importance, layer_order=layer_order)
    (tmp / IMPORTANCE_FILE).write_text(json.dumps(importance.to_dict()))
    info = {"hwnas_version": hwnas.__version__, "base_model": sn.name,
            "base_fingerprint": sn.fingerprint, "importance": sn.importance.method,
            "config": cfg.to_dict(), "steps": st.step, "tokens": st.tokens,
            "seconds": st.seconds, "bf16": bf16, "losses": st.losses}
    (tmp / INFO_FILE).write_text(json.dumps(info, indent=1))
    for f in tmp.iterdir():
        os.replace(f, out / f.name)
    tmp.rmdir()
    loss_curve(out / CURVE_FILE, st.losses)


def loss_curve(path: Path, losses: list[dict[str, float | None]]) -> None:
    if not losses:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the curve is a convenience; the numbers are in hwnas_supernet.json
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = np.arange(1, len(losses) + 1)
    for key in ("full", "smallest", "random"):
        y = np.array([d[key] for d in losses], dtype=float)
        ok = np.isfinite(y)  # an alternating run trains each role every other step
        if ok.any():
            ax.plot(steps[ok], y[ok], label=key, lw=1)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("distillation loss (KL)")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
