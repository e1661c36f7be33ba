"""Training-free repair of a cut subnet: least-squares re-fits folded into its own weights.

Everything is fitted on activations of the *full* base model over calibration text that no
benchmark uses (`hwnas.datasets.text.training_passages`: CoQA, SQuAD and DROP passages; never
LAMBADA, the held-out text), so one pass over that text serves any number of subnets.

- **Narrower MLP** (kept channels K of layer i): the kept columns of `down_proj` are re-fit
  so the narrow MLP's output matches the full one's, shrunk toward the original kept columns
  (not toward zero, which hurts)::

      W = argmin ||A_K W^T - Y||^2 + lam ||W - W_K||^2,   Y = A W_full^T
      W^T = (G_KK + lam I)^-1 (G_K: W_full^T + lam W_K^T),  G = A^T A

  with lam = alpha * mean(diag(G_KK)). Only the Gram G of `down_proj`'s input is needed.
- **Fewer KV groups**: the same re-fit of the kept columns of `o_proj`.
- **Dropped span** j+1..k after kept layer j (ReplaceMe): a linear map T (hidden x hidden)
  with r_j + T m_j ~ h_(k+1), where r_j is the residual after layer j's attention, m_j its MLP
  output and h_(k+1) the hidden state leaving the span; regularised toward the identity and
  folded into the down projection (W_down <- T W_down, bias <- T bias). No new modules: the
  repaired subnet stays a plain model.

A subnet's repair is kept only if it lowers the loss on further calibration tokens that the
fits did not see (on SmolLM2 it hurt 1 of 20 random subnets, one without layers 3 and 11).
Repaired weights (only the tensors that change; none when the check rejected the repair) are
cached as safetensors per
(model fingerprint, subnet key, repair config and version) under the hwnas cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from hwnas.errors import InputError
from hwnas.paths import sub_dir
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.importance import Importance
from hwnas.supernet.space import SubnetSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

REPAIR_VERSION = "ls-v2"
MODES = ("none", "ls")
Deltas = dict[str, torch.Tensor]


class Base(Protocol):
    """What repair reads of a base model (a `Supernet` is one; repair does not import it, so
    that `Supernet.extract` can call repair without a circle)."""

    @property
    def name(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def model(self) -> PreTrainedModel: ...
    @property
    def tokenizer(self) -> PreTrainedTokenizerBase | None: ...
    @property
    def arch(self) -> ArchInfo: ...
    @property
    def importance(self) -> Importance: ...


@dataclass(frozen=True)
class RepairConfig:
    tokens: int = 16384  # calibration tokens
    seq_len: int = 512
    # ridge strengths relative to the Gram's mean diagonal; chosen on SmolLM2-135M (16k
    # calibration tokens, LAMBADA perplexity): the MLP fit is flat over 0.01..0.2, the
    # o_proj and span fits prefer little shrinkage (0.01 beat 0.05, 0.2 and 1.0)
    mlp_alpha: float = 0.1
    attn_alpha: float = 0.02
    span_alpha: float = 0.01
    mlp: bool = True
    attn: bool = True
    spans: bool = True
    # weight tokens by 1/||h||^2 (see `collect_stats`): measured on SmolLM2 it was a wash
    # (better on one span cut, worse on a deep cut, equal elsewhere), so off by default
    relative: bool = False
    # keep a subnet's repair only if it lowers the loss on this many further calibration
    # tokens (not used for fitting); 0 turns the check off
    guard_tokens: int = 2048

    def key(self) -> str:
        blob = json.dumps([REPAIR_VERSION, asdict(self)], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"--repair '{mode}': choose one of {', '.join(MODES)}")
    return mode


# ---- what a subnet needs ----------------------------------------------------------------
@dataclass
class Needs:
    mlp_grams: set[int] = field(default_factory=set)  # base layers with a narrower MLP
    attn_grams: set[int] = field(default_factory=set)  # base layers with fewer KV groups
    spans: set[tuple[int, int]] = field(default_factory=set)  # (last kept j, last dropped k)

    def add(self, other: Needs) -> None:
        self.mlp_grams |= other.mlp_grams
        self.attn_grams |= other.attn_grams
        self.spans |= other.spans


def spans_of(spec: SubnetSpec, num_layers: int) -> list[tuple[int, int]]:
    """(j, k) for every run of dropped layers j+1..k that follows a kept layer j."""
    out = []
    kept = list(spec.layers)
    for pos, j in enumerate(kept):
        nxt = kept[pos + 1] if pos + 1 < len(kept) else num_layers
        if nxt > j + 1:
            out.append((j, nxt - 1))
    return out


def needs_of(spec: SubnetSpec, arch: ArchInfo, cfg: RepairConfig) -> Needs:
    n = Needs()
    for layer, w, kv in zip(spec.layers, spec.intermediate_size, spec.kv_heads, strict=True):
        if cfg.mlp and w < arch.intermediate_size:
            n.mlp_grams.add(layer)
        if cfg.attn and kv < arch.num_kv_heads:
            n.attn_grams.add(layer)
    if cfg.spans:
        n.spans.update(spans_of(spec, arch.num_layers))
    return n


# ---- calibration statistics from the full model --------------------------------------------
@dataclass
class RepairStats:
    mlp_grams: dict[int, torch.Tensor]  # A^T A of down_proj input
    attn_grams: dict[int, torch.Tensor]  # X^T X of o_proj input
    span_mm: dict[tuple[int, int], torch.Tensor]  # M_j^T W M_j (W: per-token weights)
    span_md: dict[tuple[int, int], torch.Tensor]  # M_j^T W (h_(k+1) - r_j)
    tokens: int


def calibration_ids(tokenizer: PreTrainedTokenizerBase, tokens: int, seq_len: int
                    ) -> torch.Tensor:
    """(n_seq, seq_len) token ids from the start of the training passages."""
    from hwnas.datasets.overlap import clean_training_passages

    parts: list[torch.Tensor] = []
    have = 0
    for _name, text in clean_training_passages():
        ids = tokenizer(text + "\n\n", return_tensors="pt", add_special_tokens=False).input_ids[0]
        parts.append(ids)
        have += ids.numel()
        if have >= tokens:
            break
    flat = torch.cat(parts)[:tokens]
    n_seq = max(1, flat.numel() // seq_len)
    return flat[:n_seq * seq_len].view(n_seq, -1)


@torch.inference_mode()
def collect_stats(model: PreTrainedModel, ids: torch.Tensor, needs: Needs,
                  batch: int = 2, relative: bool = True) -> RepairStats:
    """One pass of the full model over `ids`, accumulating what `needs` asks for.

    With `relative`, each token's contribution is weighted by 1 / ||h||^2 of the hidden
    state the fitted output is added to (after the layer, or after its attention for
    o_proj, or leaving the span): the next RMSNorm sees errors relative to that norm, and a
    few tokens with massive activations would otherwise decide the whole fit."""
    layers = model.model.layers
    h_in: dict[int, torch.Tensor] = {}
    attn_out: dict[int, torch.Tensor] = {}
    mlp_g: dict[int, torch.Tensor] = {}
    attn_g: dict[int, torch.Tensor] = {}
    span_mm: dict[tuple[int, int], torch.Tensor] = {}
    span_md: dict[tuple[int, int], torch.Tensor] = {}
    span_m: dict[int, torch.Tensor] = {}  # this chunk's m_j
    span_r: dict[int, torch.Tensor] = {}  # this chunk's r_j
    span_h: dict[int, torch.Tensor] = {}  # this chunk's h_(k+1)
    want_j = {j for j, _ in needs.spans}
    want_k = {k for _, k in needs.spans}
    watch = want_j | want_k | needs.mlp_grams | needs.attn_grams
    hooks = []

    def flat(t: torch.Tensor) -> torch.Tensor:
        return t.detach().float().reshape(-1, t.shape[-1])

    def weight(h: torch.Tensor) -> torch.Tensor:
        if not relative:
            return torch.ones(h.shape[0], 1)
        return 1.0 / (h.pow(2).sum(1, keepdim=True) / h.shape[1] + 1e-6)

    def acc(store: dict[int, torch.Tensor], i: int, x: torch.Tensor, w: torch.Tensor) -> None:
        g = (x * w).T @ x
        store[i] = store[i] + g if i in store else g

    for i in sorted(watch):
        layer = layers[i]

        def pre(_m: nn.Module, args: tuple[torch.Tensor, ...], i: int = i) -> None:
            h_in[i] = flat(args[0])
        hooks.append(layer.register_forward_pre_hook(pre))

        def o_hook(_m: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor,
                   i: int = i) -> None:
            att = flat(out)
            attn_out[i] = att
            if i in needs.attn_grams:
                acc(attn_g, i, flat(args[0]), weight(h_in[i] + att))
        hooks.append(layer.self_attn.o_proj.register_forward_hook(o_hook))

        def d_hook(_m: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor,
                   i: int = i) -> None:
            m = flat(out)
            r = h_in[i] + attn_out[i]
            if i in needs.mlp_grams:
                acc(mlp_g, i, flat(args[0]), weight(r + m))
            if i in want_j:
                span_m[i], span_r[i] = m, r
            if i in want_k:
                span_h[i] = r + m
        hooks.append(layer.mlp.down_proj.register_forward_hook(d_hook))
    device = next(model.parameters()).device
    try:
        for s in range(0, ids.shape[0], batch):
            model.model(ids[s:s + batch].to(device), use_cache=False)
            for j, k in needs.spans:
                m, target = span_m[j], span_h[k]
                w = weight(target)
                mm = (m * w).T @ m
                md = (m * w).T @ (target - span_r[j])
                span_mm[(j, k)] = span_mm[(j, k)] + mm if (j, k) in span_mm else mm
                span_md[(j, k)] = span_md[(j, k)] + md if (j, k) in span_md else md
            for d in (h_in, attn_out, span_m, span_r, span_h):
                d.clear()
    finally:
        for h in hooks:
            h.remove()
    return RepairStats(mlp_g, attn_g, span_mm, span_md, int(ids.numel()))


# ---- the closed-form fits ------------------------------------------------------------------
def ridge_columns(w_full: torch.Tensor, keep: Sequence[int], gram: torch.Tensor,
                  alpha: float) -> torch.Tensor:
    """Re-fit the kept input columns of a linear layer (out x in) so its output on the
    calibration inputs matches the full layer's, shrunk toward the original kept columns."""
    g = gram.double()
    wf = w_full.detach().double()
    k = torch.as_tensor(list(keep), dtype=torch.long)
    gkk = g.index_select(0, k).index_select(1, k)
    lam = alpha * float(gkk.diagonal().mean()) + 1e-12
    rhs = g.index_select(0, k) @ wf.T + lam * wf.index_select(1, k).T
    x = torch.linalg.solve(gkk + lam * torch.eye(len(k), dtype=torch.float64), rhs)
    return x.T.to(w_full.dtype).contiguous()


def span_map(mm: torch.Tensor, md: torch.Tensor, alpha: float) -> torch.Tensor:
    """T minimising ||M T^T - D||^2 + lam ||T - I||^2 (rows are tokens)."""
    a = mm.double()
    d = a.shape[0]
    lam = alpha * float(a.diagonal().mean()) + 1e-12
    eye = torch.eye(d, dtype=torch.float64)
    tt = torch.linalg.solve(a + lam * eye, md.double() + lam * eye)
    return tt.T


def head_columns(groups: Sequence[int], q_per_kv: int, head_dim: int) -> list[int]:
    return [g * q_per_kv * head_dim + r for g in groups for r in range(q_per_kv * head_dim)]


def solve(base: PreTrainedModel, arch: ArchInfo, imp: Importance, spec: SubnetSpec,
          stats: RepairStats, cfg: RepairConfig) -> Deltas:
    """The repaired tensors of the subnet, named as in the extracted subnet's state dict."""
    out: Deltas = {}
    layers = base.model.layers
    pos_of = {layer: p for p, layer in enumerate(spec.layers)}
    for p, (i, w, kv) in enumerate(zip(spec.layers, spec.intermediate_size, spec.kv_heads,
                                       strict=True)):
        prefix = f"model.layers.{p}."
        if i in stats.mlp_grams and w < arch.intermediate_size:
            out[prefix + "mlp.down_proj.weight"] = ridge_columns(
                layers[i].mlp.down_proj.weight, imp.channels(i, w), stats.mlp_grams[i],
                cfg.mlp_alpha)
        if i in stats.attn_grams and kv < arch.num_kv_heads:
            cols = head_columns(imp.groups(i, kv), arch.q_per_kv, arch.head_dim)
            out[prefix + "self_attn.o_proj.weight"] = ridge_columns(
                layers[i].self_attn.o_proj.weight, cols, stats.attn_grams[i], cfg.attn_alpha)
    if cfg.spans:
        for j, k in spans_of(spec, arch.num_layers):
            if (j, k) not in stats.span_md:
                continue
            t = span_map(stats.span_mm[(j, k)], stats.span_md[(j, k)], cfg.span_alpha)
            p = pos_of[j]
            name = f"model.layers.{p}.mlp.down_proj.weight"
            down = layers[j].mlp.down_proj
            w_cur = out.get(name)
            if w_cur is None:
                w_cur = down.weight.detach().index_select(
                    1, torch.as_tensor(imp.channels(j, spec.intermediate_size[p])))
            out[name] = (t @ w_cur.double()).to(down.weight.dtype).contiguous()
            if down.bias is not None:
                out[f"model.layers.{p}.mlp.down_proj.bias"] = (
                    t @ down.bias.detach().double()).to(down.bias.dtype).contiguous()
    return out


# ---- caching and the public entry points ------------------------------------------------
def cache_path(fingerprint: str, spec: SubnetSpec, cfg: RepairConfig) -> Path:
    return sub_dir("repair", REPAIR_VERSION) / f"{fingerprint}-{spec.key()}-{cfg.key()}.safetensors"


def _save(path: Path, deltas: Deltas) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in deltas.items()}, str(tmp),
              metadata={"repair_version": REPAIR_VERSION})
    tmp.replace(path)


def _load(path: Path) -> Deltas:
    from safetensors.torch import load_file

    return dict(load_file(str(path)))


def repair_many(sn: Base, specs: Sequence[SubnetSpec], cfg: RepairConfig | None = None,
                progress: Callable[[str], None] | None = None) -> list[Deltas]:
    """Repaired tensors for each spec: cached ones are read, the rest share one pass of the
    full model over the calibration text."""
    cfg = cfg or RepairConfig()
    if sn.tokenizer is None:
        raise InputError(f"model '{sn.name}' has no tokenizer; repair needs one to read its "
                         "calibration text")
    result: list[Deltas | None] = []
    needs = Needs()
    for spec in specs:
        path = cache_path(sn.fingerprint, spec, cfg)
        if path.is_file():
            result.append(_load(path))
        else:
            result.append(None)
            needs.add(needs_of(spec, sn.arch, cfg))
    missing = [i for i, r in enumerate(result) if r is None]
    if missing and not (needs.mlp_grams or needs.attn_grams or needs.spans):
        for i in missing:  # nothing was cut (the full model): nothing to repair
            result[i] = {}
        missing = []
    if missing:
        if progress is not None:
            progress(f"repair: {cfg.tokens} calibration tokens through the full model for "
                     f"{len(missing)} subnet(s)")
        all_ids = calibration_ids(sn.tokenizer, cfg.tokens + cfg.guard_tokens, cfg.seq_len)
        n_fit = max(1, min(all_ids.shape[0] - (1 if cfg.guard_tokens else 0),
                           cfg.tokens // cfg.seq_len))
        stats = collect_stats(sn.model, all_ids[:n_fit], needs, relative=cfg.relative)
        check = all_ids[n_fit:]
        for i in missing:
            d = solve(sn.model, sn.arch, sn.importance, specs[i], stats, cfg)
            if d and check.shape[0] and not _helps(sn, specs[i], d, check):
                d = {}  # the repair made this subnet worse on unseen calibration text
            _save(cache_path(sn.fingerprint, specs[i], cfg), d)
            result[i] = d
    return [r if r is not None else {} for r in result]


@torch.inference_mode()
def mean_nll(model: PreTrainedModel, ids: torch.Tensor, batch: int = 2) -> float:
    """Mean next-token negative log-likelihood over the rows of `ids`."""
    total, count = 0.0, 0
    for s in range(0, ids.shape[0], batch):
        chunk = ids[s:s + batch]
        logits = model(chunk, use_cache=False).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                chunk[:, 1:].reshape(-1), reduction="sum")
        total += float(nll)
        count += chunk[:, 1:].numel()
    return total / max(count, 1)


def _helps(sn: Base, spec: SubnetSpec, deltas: Deltas, check: torch.Tensor) -> bool:
    from hwnas.supernet.extract import build

    model = build(sn.model, sn.arch, sn.importance, spec)
    before = mean_nll(model, check)
    apply_deltas(model, deltas)
    return mean_nll(model, check) < before


def repair_deltas(sn: Base, spec: SubnetSpec, cfg: RepairConfig | None = None) -> Deltas:
    return repair_many(sn, [spec], cfg)[0]


@torch.no_grad()
def apply_deltas(model: PreTrainedModel, deltas: Deltas) -> None:
    """Copy repaired tensors into an extracted subnet (same names and shapes)."""
    params = dict(model.named_parameters())
    for name, t in deltas.items():
        if name not in params:
            raise RuntimeError(f"repair tensor {name} does not exist in the subnet model")
        p = params[name]
        if p.shape != t.shape:
            raise RuntimeError(f"repair tensor {name} has shape {tuple(t.shape)}, the subnet "
                               f"expects {tuple(p.shape)}")
        p.copy_(t.to(p.dtype))
