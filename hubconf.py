"""torch.hub entry points: ``torch.hub.load(repo_dir, "tokenizer" | "model" | "modelForMaskedLM" |
"modelForSequenceClassification" | "modelForQuestionAnswering", path, source="local")`` with an HF model folder (or
one of our model files with config_path= and vocab_path=); our tokenizer and models answer (uer/hub.py)."""
dependencies = ["torch", "numpy", "safetensors", "sentencepiece", "regex"]

from uer.hub import (model, modelForMaskedLM, modelForQuestionAnswering,  # noqa: E402,F401
                     modelForSequenceClassification, tokenizer)
