#!/usr/bin/env python3
"""Convert a HuggingFace XLM-R model (file or folder) to UER format.

    python3 scripts/convert_xlmroberta_from_huggingface_to_uer.py --input_model_path hf_folder --output_model_path models/xlmroberta_model.bin
"""
from uer.converters import cli

if __name__ == "__main__":
    cli.xlmroberta_huggingface_to_uer()
