"""build_model: the one place that turns a ModelConfig into modules."""
from __future__ import annotations

from torch import nn

from uer.embeddings import Embedding, str2embedding
from uer.encoders import str2encoder
from uer.layers.layer_norm import LayerNorm, UerLayerNorm, build_layer_norm
from uer.models.model import Model
from uer.targets import Targets, str2target
from uer.layers.activations import str2act
from uer.model_config import ConfigError, ModelConfig


def build_embedding(cfg: ModelConfig) -> Embedding:
    parts = {name: str2embedding[name](vocab_size=cfg.vocab_size, emb_size=cfg.emb_size,
                                       max_seq_length=cfg.max_seq_length)
             for name in cfg.embedding}
    layer_norm = None if cfg.remove_embedding_layernorm else build_layer_norm(cfg.emb_size, cfg.layernorm,
                                                                               cfg.layernorm_eps)
    return Embedding(parts, layer_norm, cfg.dropout)


def validate_model_config(cfg: ModelConfig) -> ModelConfig:
    """Check the names of ``cfg`` against the registries and the encoder's own rules; returns ``cfg``."""
    problems = [f"unknown embedding part {part!r} (known: {', '.join(sorted(str2embedding))})"
                for part in cfg.embedding if part not in str2embedding]
    if cfg.encoder not in str2encoder:
        problems.append(f"unknown encoder {cfg.encoder!r} (known: {', '.join(sorted(str2encoder))})")
    else:  # encoder-specific checks (heads dividing hidden_size, emb_size == hidden_size, ...)
        problems.extend(str2encoder[cfg.encoder].config_problems(cfg))
    problems += [f"unknown target {name!r} (known: {', '.join(sorted(str2target))})"
                 for name in cfg.target if name not in str2target]
    if cfg.hidden_act not in str2act:
        problems.append(f"unknown hidden_act {cfg.hidden_act!r} (known: {', '.join(sorted(str2act))})")
    if problems:
        raise ConfigError("invalid model configuration: " + "; ".join(problems))
    return cfg


def build_model(cfg: ModelConfig, with_target: bool = True) -> Model:
    """Embedding + encoder (+ targets), initialised, with tied weights when asked."""
    validate_model_config(cfg)
    embedding = build_embedding(cfg)
    encoder = str2encoder[cfg.encoder].from_config(cfg)
    target = Targets({name: str2target[name].from_config(cfg) for name in cfg.target}) if with_target else None
    task_embedding = nn.Embedding(cfg.tasks_num, cfg.emb_size) if cfg.tasks_num else None
    model = Model(embedding, encoder, target, task_embedding)
    model.apply(init_weights)
    if with_target and cfg.tie_weights:
        tie_output_embedding(model)
    return model


def init_weights(module: nn.Module) -> None:
    """UER-py/BERT initialisation by module type: N(0, 0.02) weights, zero biases, unit layer norms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (LayerNorm, UerLayerNorm)):
        nn.init.ones_(module.gamma)
        nn.init.zeros_(module.beta)


def tie_output_embedding(model: Model) -> None:
    """Share the word embedding matrix with every target that projects onto the vocabulary."""
    word = getattr(model.embedding, "word", None)
    if word is None:
        raise ValueError("--tie_weights needs a 'word' embedding")
    for name in model.target.names:
        head = getattr(model.target, name)
        # mlm projects with linear_2, lm/bilm with output_layer (UER-py's names).
        for attr in ("linear_2", "output_layer"):
            layer = getattr(head, attr, None)
            if layer is not None and layer.weight.shape == word.embedding.weight.shape:
                layer.weight = word.embedding.weight
