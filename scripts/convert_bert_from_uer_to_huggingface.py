#!/usr/bin/env python3
"""Convert a UER-format BERT file to HuggingFace's BertForPreTraining (--type bert) or BertForMaskedLM (--type mlm).

    python3 scripts/convert_bert_from_uer_to_huggingface.py --input_model_path models/book_review_model.bin \\
        --output_model_path hf_model/pytorch_model.bin --config_output_dir hf_model --config_path models/bert/base_config.json --type bert

    then: transformers.BertForPreTraining.from_pretrained("hf_model")
"""
import sys
from pathlib import Path

# scripts/ is not a package: make the repository's uer/ importable when run as a file.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from uer.converters import cli  # noqa: E402

if __name__ == "__main__":
    cli.bert_uer_to_huggingface()
