#!/usr/bin/env python3
"""Convert a sentence-transformers BERT model (its folder, or the HF weights file in it) to a UER-format siamese model.

    python3 scripts/convert_sbert_from_huggingface_to_uer.py --input_model_path models/all-MiniLM-L6-v2 \\
        --output_model_path models/sbert_uer_model.bin
"""
from uer.converters import cli

if __name__ == "__main__":
    cli.sbert_huggingface_to_uer()
