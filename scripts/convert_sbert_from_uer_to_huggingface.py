#!/usr/bin/env python3
"""Convert a UER-format siamese model (tower 0) to HF BertModel weights for a sentence-transformers folder.

    python3 scripts/convert_sbert_from_uer_to_huggingface.py --input_model_path models/finetuned_model.bin \\
        --output_model_path models/my_sbert/model.safetensors --config_output_dir models/my_sbert
"""
from uer.converters import cli

if __name__ == "__main__":
    cli.sbert_uer_to_huggingface()
