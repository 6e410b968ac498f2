#!/usr/bin/env python3
"""Convert HuggingFace's ALBERT (AlbertModel, AlbertForPreTraining, AlbertForMaskedLM) to UER format.

    python3 scripts/convert_albert_from_huggingface_to_uer.py --input_model_path INPUT --output_model_path OUTPUT \\
        [--type albert|mlm] [--config_output_dir hf_albert --config_path models/albert/base_config.json]
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.albert_huggingface_to_uer()
