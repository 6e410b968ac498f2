#!/usr/bin/env python3
"""Convert a UER-format XLM-R model to a HuggingFace folder (weights, config.json, tokenizer files).

    python3 scripts/convert_xlmroberta_from_uer_to_huggingface.py --input_model_path models/xlmroberta_model.bin \\
        --output_model_path hf_folder --config_path models/xlm-roberta/base_config.json \\
        --spm_model_path sentencepiece.bpe.model
"""
from uer.converters import cli

if __name__ == "__main__":
    cli.xlmroberta_uer_to_huggingface()
