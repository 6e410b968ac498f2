#!/usr/bin/env python3
"""Convert a HuggingFace RoBERTa model (file or folder) to UER format.

    python3 scripts/convert_roberta_from_huggingface_to_uer.py --input_model_path hf_folder --output_model_path models/roberta_model.bin
"""
from uer.converters import cli

if __name__ == "__main__":
    cli.roberta_huggingface_to_uer(model_type="roberta")
