"""The names every component registry answers to, importable without torch (or numpy).

Argparse ``choices=`` and help texts (``uer/opts.py``, which ``preprocess.py`` loads without torch) read
their lists here. Each torch registry is tied to its tuple: ``register`` refuses a name missing here and the
package's ``__init__`` refuses to import when a name here has no implementation
(:func:`uer.registry.check_complete`), so a list is written once and can never drift from the code.

Registries that import no torch are read directly instead: ``str2tokenizer`` (``uer.text.tokenizers``)
and ``str2instances`` (``uer.data.pretrain_instances``, the dataset kinds, each declaring the objectives it
trains and which other kinds' targets can train on it).
"""
from __future__ import annotations

# uer.embeddings.str2embedding: the parts of an embedding ("embedding": ["word", "pos", "seg"]).
EMBEDDINGS = ("word", "pos", "seg", "sinusoidalpos")
# uer.encoders.str2encoder
ENCODERS = ("transformer", "rnn", "lstm", "gru", "birnn", "bilstm", "bigru", "cnn", "gatedcnn", "rcnn", "crnn",
            "attn", "synt")
# uer.targets.str2target: single pre-training objectives (composite --target names are dataset kinds).
TARGETS = ("mlm", "sp", "lm", "bilm", "cls", "sd", "sr", "cap", "tdr", "dr", "ir", "dlm")
# The transformer's attention masks (uer.encoders.transformer_encoder).
MASKS = ("fully_visible", "causal")
# How an encoder output becomes one vector (uer.targets.cls_target.pool, shared by the fine-tuning heads).
POOLINGS = ("first", "mean", "max", "last")
# Layer norm numerics (uer.layers.layer_norm.build_layer_norm).
LAYERNORM_VARIANTS = ("standard", "uer")

# Legacy spellings that uer.config turns into the names above (UER-py's 2020 configs and flags).
EMBEDDING_ALIASES = {
    "bert": ("word", "pos", "seg"),
    "word_pos_seg": ("word", "pos", "seg"),
    "word_pos": ("word", "pos"),
    "word": ("word",),
    "word_sinusoidalpos": ("word", "sinusoidalpos"),
}
# encoder alias -> (encoder, mask)
ENCODER_ALIASES = {"bert": ("transformer", "fully_visible"), "gpt": ("transformer", "causal")}
