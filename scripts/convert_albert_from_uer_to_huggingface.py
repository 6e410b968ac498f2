#!/usr/bin/env python3
"""Convert a UER-format ALBERT model to HuggingFace's AlbertForPreTraining (--type albert) or AlbertForMaskedLM (--type mlm).

    python3 scripts/convert_albert_from_uer_to_huggingface.py --input_model_path INPUT --output_model_path OUTPUT \\
        [--type albert|mlm] [--config_output_dir hf_albert --config_path models/albert/base_config.json]
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.albert_uer_to_huggingface()
