#!/usr/bin/env python3
"""Convert a UER-format RoBERTa model to a HuggingFace folder (weights, config.json, tokenizer files).

    python3 scripts/convert_roberta_from_uer_to_huggingface.py --input_model_path models/roberta_model.bin \\
        --output_model_path hf_folder --config_path models/bert/base_config.json --vocab_path vocab.json --merges_path merges.txt
"""
from uer.converters import cli

if __name__ == "__main__":
    cli.roberta_uer_to_huggingface(model_type="roberta")
