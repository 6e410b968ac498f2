"""Layer distillation (ERNIE tiny, TinyBERT): a student learns from a teacher's hidden states, attention
distributions and output logits, in pre-training ("general distillation" on a corpus, pretrain.py) and in
fine-tuning (the classifier task). The options are the same in both places (:func:`add_distillation_options`).

Losses, per instance (padding excluded; ``P`` a learned projection student width -> teacher width, present
when the widths differ; student layer ``i`` is compared with teacher layer ``layer_map[i]``, summed over
the mapped pairs):

* ``hidden``: mean over the instance's real positions and the teacher's width of ``(P h_s - h_t)^2``, on each
  mapped layer's output;
* ``attention``: KL(teacher || student) of the attention distributions ``softmax(Q K^T / sqrt(d) + mask)``,
  summed over keys, averaged over heads and real query positions (when the head counts differ, the
  head-averaged distributions are compared);
* ``logits``: ``T^2 * KL(softmax(t / T) || softmax(s / T))`` (temperature ``T``) of the prediction layer.

The total is ``sum_k weight_k * loss_k``. Uniform layer mapping by default: student layer ``i`` (1-based, of
``S``) learns from teacher layer ``round(i * T_layers / S)``, so the last learns from the last.

Hidden states come from forward hooks on the encoders' transformer layers (each records its input, mask and
output of the last forward); attention distributions are recomputed here from the recorded layer input and the
layer's own query/key projections (the attention module computes them fused and never materialises them).
The teacher is frozen (``requires_grad`` off, eval mode, run under ``torch.no_grad``) and runs once per batch.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from uer.utils.ranges import finite_positive_float, non_negative_float, non_negative_int
from uer.errors import UsageError

DISTILL_LOSSES = ("hidden", "attention", "logits")


def add_distillation_options(parser: argparse.ArgumentParser) -> None:
    """The distillation options, one declaration for pretrain.py and the fine-tuning tasks."""
    group = parser.add_argument_group("layer distillation (ERNIE tiny / TinyBERT)")
    group.add_argument("--teacher_model_path", default=None,
                       help="Teacher model file: the student learns from its layers and logits (see --distill_losses).")
    group.add_argument("--teacher_config_path", default=None,
                       help="The teacher's config (JSON, e.g. models/bert/mini_config.json); its size may differ.")
    group.add_argument("--distill_losses", nargs="+", choices=DISTILL_LOSSES, default=list(DISTILL_LOSSES),
                       help="What the student learns from the teacher: hidden states, attention distributions, "
                            "prediction-layer logits.")
    group.add_argument("--distill_weights", nargs="+", type=non_negative_float, default=None,
                       help="Weight of each of --distill_losses, in that order (default: 1 each).")
    group.add_argument("--distill_temperature", type=finite_positive_float, default=1.0,
                       help="Temperature of the logits loss (softened distributions; the loss is scaled by T^2).")
    group.add_argument("--distill_layer_map", nargs="+", type=non_negative_int, default=None,
                       help="Teacher layer (1-based) each student layer learns from (default: uniform, the last "
                            "from the last).")


@dataclass(frozen=True)
class DistillConfig:
    losses: tuple[str, ...] = DISTILL_LOSSES
    weights: tuple[float, ...] = (1.0, 1.0, 1.0)
    temperature: float = 1.0
    layer_map: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.losses if name not in DISTILL_LOSSES]
        if unknown or not self.losses or len(set(self.losses)) != len(self.losses):
            raise UsageError(f"--distill_losses: each of {', '.join(DISTILL_LOSSES)} at most once, got {self.losses}")
        if len(self.weights) != len(self.losses) or any(w < 0 for w in self.weights):
            raise UsageError(f"--distill_weights: one non-negative weight per loss ({', '.join(self.losses)}), "
                             f"got {list(self.weights)}")
        if not self.temperature > 0:
            raise UsageError(f"--distill_temperature must be positive, got {self.temperature}")

    def weight(self, name: str) -> float:
        return self.weights[self.losses.index(name)] if name in self.losses else 0.0

    @property
    def uses_layers(self) -> bool:
        return "hidden" in self.losses or "attention" in self.losses

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "DistillConfig":
        losses = tuple(args.distill_losses)
        weights = tuple(args.distill_weights) if args.distill_weights is not None else (1.0,) * len(losses)
        return cls(losses, weights, args.distill_temperature,
                   tuple(args.distill_layer_map) if args.distill_layer_map else None)


def check_distillation_args(args: argparse.Namespace) -> bool:
    """Whether distillation is asked for; the teacher's two files go together."""
    if (args.teacher_model_path is None) != (args.teacher_config_path is None):
        raise UsageError("--teacher_model_path and --teacher_config_path go together: give both")
    return args.teacher_model_path is not None


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer (1-based) for each student layer: ``round(i * T / S)`` for i = 1 .. S."""
    return [max(1, round(i * teacher_layers / student_layers)) for i in range(1, student_layers + 1)]


def transformer_layers(encoder: nn.Module) -> list[nn.Module]:
    """The layer applied at each depth of a transformer encoder (the same one repeated under sharing)."""
    layers = getattr(encoder, "transformer", None)
    if layers is None:
        raise UsageError("layer distillation (hidden, attention) needs transformer encoders on both sides")
    return [layers] * encoder.layers_num if isinstance(layers, nn.Module) and not isinstance(layers, nn.ModuleList) \
        else list(layers)


class LayerRecorder:
    """Forward hooks on an encoder's transformer layers: the input, attention mask and output of each layer
    application of the last forward (in depth order; a shared layer records once per application)."""

    def __init__(self, encoder: nn.Module) -> None:
        self.layers = transformer_layers(encoder)
        self.inputs: list[torch.Tensor] = []
        self.masks: list[torch.Tensor | None] = []
        self.outputs: list[torch.Tensor] = []
        self._handles = [layer.register_forward_hook(self._record) for layer in dict.fromkeys(self.layers)]

    def _record(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if len(self.outputs) == len(self.layers):  # a new forward
            self.clear()
        self.inputs.append(args[0])
        self.masks.append(args[1] if len(args) > 1 else None)
        self.outputs.append(output)

    def clear(self) -> None:
        self.inputs, self.masks, self.outputs = [], [], []

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def attention(self, depth: int) -> torch.Tensor:
        """[batch x heads x L x L] attention distributions of layer application ``depth`` (0-based),
        recomputed from its recorded input with the layer's query and key projections."""
        return attention_probs(self.layers[depth], self.inputs[depth], self.masks[depth])


def attention_scores(layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``Q K^T / sqrt(d) + mask`` of a transformer layer for its input ``hidden`` [B x L x H]:
    [B x heads x L x L] (float32). Pre-LayerNorm layers normalise the input first, as their forward does."""
    from uer.layers.transformer import PreNormTransformerLayer

    x = layer.layer_norm_1(hidden) if isinstance(layer, PreNormTransformerLayer) else hidden
    attn = layer.self_attn
    b, n, _ = x.shape

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(b, n, attn.heads_num, attn.head_size).transpose(1, 2).float()

    q, k = heads(attn.linear_layers[0](x)), heads(attn.linear_layers[1](x))
    scores = q @ k.transpose(-1, -2) / math.sqrt(attn.head_size)
    return scores if mask is None else scores + mask.float()


def attention_probs(layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return torch.softmax(attention_scores(layer, hidden, mask), dim=-1)


def hidden_loss(student: torch.Tensor, teacher: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """[B]: mean over real positions and features of (student - teacher)^2 (``student`` already projected).
    A student output of the first position only (a classifier's last layer) is compared at that position."""
    if student.shape[1] != teacher.shape[1]:
        teacher, real = teacher[:, :student.shape[1]], real[:, :student.shape[1]]
    se = ((student.float() - teacher.float()) ** 2).mean(-1) * real
    return se.sum(-1) / real.sum(-1).clamp_min(1)


def attention_loss(student_scores: torch.Tensor, teacher_probs: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """[B]: KL(teacher || student) per query row, summed over keys, averaged over heads and real queries.
    Different head counts: the head-averaged distributions are compared."""
    if student_scores.shape[1] != teacher_probs.shape[1]:
        log_s = torch.log_softmax(student_scores, -1).exp().mean(1, keepdim=True).clamp_min(1e-30).log()
        teacher_probs = teacher_probs.mean(1, keepdim=True)
    else:
        log_s = torch.log_softmax(student_scores, -1)
    kl = (torch.xlogy(teacher_probs, teacher_probs) - teacher_probs * log_s).sum(-1)  # [B x heads x L]
    kl = kl.mean(1) * real
    return kl.sum(-1) / real.sum(-1).clamp_min(1)


def logits_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """[N]: ``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` per row."""
    t = torch.softmax(teacher.float() / temperature, -1)
    log_s = torch.log_softmax(student.float() / temperature, -1)
    return (torch.xlogy(t, t) - t * log_s).sum(-1) * temperature ** 2


def frozen(model: nn.Module) -> nn.Module:
    """The teacher: eval mode, no parameter requires a gradient."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class LayerDistiller(nn.Module):
    """The layer losses between a student encoder and a frozen teacher encoder, from their last forwards.

    Holds the projection (trained with the student; key ``projection``) when ``hidden`` is asked for and the
    widths differ. The teacher is kept outside the module tree: it is neither trained nor saved.
    """

    def __init__(self, cfg: DistillConfig, student_encoder: nn.Module, teacher_encoder: nn.Module,
                 student_hidden: int, teacher_hidden: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.student = LayerRecorder(student_encoder) if cfg.uses_layers else None
        self.teacher = LayerRecorder(teacher_encoder) if cfg.uses_layers else None
        if cfg.uses_layers:
            s_layers, t_layers = len(self.student.layers), len(self.teacher.layers)
            layer_map = list(cfg.layer_map) if cfg.layer_map else uniform_layer_map(s_layers, t_layers)
            if len(layer_map) != s_layers or not all(1 <= t <= t_layers for t in layer_map):
                raise UsageError(f"--distill_layer_map: one teacher layer in 1..{t_layers} per student layer "
                                 f"({s_layers}), got {layer_map}")
            self.layer_map = layer_map
        if "hidden" in cfg.losses and student_hidden != teacher_hidden:
            self.projection = nn.Linear(student_hidden, teacher_hidden, bias=False)

    def layer_losses(self, seg: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted per-instance losses [B] of ``hidden``/``attention`` (those asked for), summed over the mapped
        layer pairs, from the recorders' last forwards (student's with gradients, teacher's without)."""
        real = (seg > 0).float()
        out: dict[str, torch.Tensor] = {}
        for s_depth, t_layer in enumerate(self.layer_map):
            t_depth = t_layer - 1
            if "hidden" in self.cfg.losses:
                h = self.student.outputs[s_depth]
                h = self.projection(h) if hasattr(self, "projection") else h
                value = hidden_loss(h, self.teacher.outputs[t_depth], real)
                out["hidden"] = out["hidden"] + value if "hidden" in out else value
            if "attention" in self.cfg.losses:
                with torch.no_grad():
                    t_probs = self.teacher.attention(t_depth)
                s_scores = attention_scores(self.student.layers[s_depth], self.student.inputs[s_depth],
                                            self.student.masks[s_depth])
                value = attention_loss(s_scores, t_probs, real)
                out["attention"] = out["attention"] + value if "attention" in out else value
        return out


def teacher_args(args: argparse.Namespace) -> argparse.Namespace:
    """The run's options with --teacher_config_path as the config: its values win over the student's, so the
    teacher is built with its own sizes (the other options, e.g. --embedding, stay the student's)."""
    import copy

    from uer.config import apply_json_config, load_json_config

    out = copy.copy(args)
    out.config_path = args.teacher_config_path
    apply_json_config(out, set(getattr(args, "explicit", set())) - set(load_json_config(args.teacher_config_path)))
    out.task_embedding = False
    return out


def load_teacher(args: argparse.Namespace, vocab_size: int, with_target: bool = True) -> tuple[nn.Module, Any]:
    """The pre-training teacher: built from --teacher_config_path (:func:`teacher_args`), loaded from
    --teacher_model_path (embedding and encoder keys must match), frozen. Returns (model, config)."""
    from uer.config import model_config_from_args
    from uer.model_builder import build_model
    from uer.model_loader import load_model_weights

    cfg = model_config_from_args(teacher_args(args), vocab_size, with_target=with_target)
    model = build_model(cfg, with_target=with_target)
    load_model_weights(model, args.teacher_model_path)
    return frozen(model), cfg


class PretrainDistillation(nn.Module):
    """General distillation in pre-training: a target (``target.distill``) beside the student's objectives.

    On each batch it runs the teacher once (no gradients) on the batch's ``src``/``seg``, then returns the
    weighted layer losses and, with ``logits``, the KL between the student's and the teacher's MLM predictions
    at the masked positions (averaged per instance). The pre-training loop divides ``loss_sum`` by the number
    of instances; "accuracy" is how often the student's top MLM prediction agrees with the teacher's.
    """

    label_key = "src"  # every batch feeds it

    def __init__(self, cfg: DistillConfig, student: nn.Module, teacher: nn.Module, student_hidden: int,
                 teacher_hidden: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.layers = LayerDistiller(cfg, student.encoder, teacher.encoder, student_hidden, teacher_hidden)
        self._teacher = (teacher,)  # a tuple: not a sub-module (not trained, not saved, not moved with the student)
        self._student_mlm = (student.target.mlm,) if "logits" in cfg.losses else None
        if "logits" in cfg.losses and "mlm" not in teacher.target.names:
            raise UsageError("--distill_losses logits in pre-training compares MLM predictions: the teacher's "
                             "config must have the mlm target")

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def count(self, batch: dict) -> int:
        return int(batch["src"].shape[0])

    def forward(self, hidden: torch.Tensor, batch: dict):
        from uer.targets.base import TargetOutput

        teacher = self.teacher
        with torch.no_grad():
            teacher_hidden = teacher.encode(batch["src"], batch["seg"])
        losses = self.layers.layer_losses(batch["seg"]) if self.cfg.uses_layers else {}
        total = sum(self.cfg.weight(name) * value.sum() for name, value in losses.items())
        agree = torch.zeros((), device=hidden.device)
        if "logits" in self.cfg.losses and batch["mlm_labels"].numel():
            positions = batch["mlm_positions"]
            student_logits = self._student_mlm[0].logits(hidden, positions)
            with torch.no_grad():
                teacher_logits = teacher.target.mlm.logits(teacher_hidden, positions)
            per_position = logits_loss(student_logits, teacher_logits, self.cfg.temperature)
            rows = positions // hidden.shape[1]
            per_instance = torch.zeros(hidden.shape[0], device=hidden.device).index_add(0, rows, per_position)
            masked = torch.bincount(rows, minlength=hidden.shape[0]).clamp_min(1).float()
            total = total + self.cfg.weight("logits") * (per_instance / masked).sum()
            same = (student_logits.argmax(-1) == teacher_logits.argmax(-1)).float()
            agree = (torch.zeros(hidden.shape[0], device=hidden.device).index_add(0, rows, same) / masked).sum()
        if not torch.is_tensor(total):
            total = hidden.sum() * 0.0
        return TargetOutput(total, agree, int(batch["src"].shape[0]))


def _drop_distillation_keys(module: nn.Module, state_dict: dict, prefix: str, local_metadata: Any) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "distill.")]:
        del state_dict[key]


def attach_distillation(model: nn.Module, teacher: nn.Module, cfg: DistillConfig, student_hidden: int,
                        teacher_hidden: int) -> None:
    """Fine-tuning: make the head ``model`` (``forward(batch) -> HeadOutput`` with ``outputs["logits"]``, and
    ``embedding``/``encoder`` attributes) learn from ``teacher`` (the same kind of head, fine-tuned).

    In training mode each forward with labels also runs the teacher once (no gradients) and adds the weighted
    per-instance distillation losses to the head's loss; evaluation and prediction are untouched. The layer
    losses' projection is ``model.distill`` (trained with the student) and is left out of the model's state
    dict, so the fine-tuned file is an ordinary model of the task.
    """
    model.distill = LayerDistiller(cfg, model.encoder, teacher.encoder, student_hidden, teacher_hidden)
    frozen(teacher)
    holder = (teacher,)  # not a sub-module: neither trained nor saved
    model.register_state_dict_post_hook(_drop_distillation_keys)

    def add_losses(module: nn.Module, args: tuple, output: Any) -> Any:
        if not module.training or output.loss is None:
            return output
        batch = args[0]
        teacher = holder[0]
        if next(teacher.parameters()).device != batch["src"].device:
            teacher.to(batch["src"].device)
        with torch.no_grad():
            teacher_logits = teacher(batch).outputs["logits"]
        losses = module.distill.layer_losses(batch["seg"]) if cfg.uses_layers else {}
        if "logits" in cfg.losses:
            losses["logits"] = logits_loss(output.outputs["logits"], teacher_logits, cfg.temperature)
        output.loss = output.loss + sum(cfg.weight(name) * value for name, value in losses.items())
        return output

    model.register_forward_hook(add_losses)


def attach_teacher_from_args(model: nn.Module, args: argparse.Namespace,
                             build: Callable[[argparse.Namespace], nn.Module]) -> str:
    """Fine-tuning with --teacher_model_path: ``build(options)`` makes the task's head from options (here the
    teacher's: :func:`teacher_args`, no pre-trained model), the teacher's fine-tuned file is loaded into it (every
    key must match) and :func:`attach_distillation` ties it to ``model``. Returns a line for the log."""
    from uer.model_loader import load_model_weights

    options = teacher_args(args)
    options.pretrained_model_path = None
    teacher = build(options)
    load_model_weights(teacher, args.teacher_model_path, strict_prefixes=("",))
    cfg = DistillConfig.from_args(args)
    attach_distillation(model, teacher, cfg, args.hidden_size, options.hidden_size)
    layer_map = getattr(model.distill, "layer_map", None)
    return (f"distillation from {args.teacher_model_path} ({options.layers_num} layers, hidden {options.hidden_size}): "
            f"{' '.join(cfg.losses)} (weights {' '.join(map(str, cfg.weights))}, temperature {cfg.temperature})"
            + (f", layer map {layer_map}" if layer_map else ""))
