#!/usr/bin/env python3
"""Convert a UER-format GPT-2 file (causal pre-LayerNorm transformer + lm target) to HuggingFace's GPT2LMHeadModel.

    python3 scripts/convert_gpt2_from_uer_to_huggingface.py --input_model_path models/gpt2_model.bin \\
        --output_model_path hf_gpt2/pytorch_model.bin --config_output_dir hf_gpt2 --config_path models/gpt2/config.json
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.gpt2_uer_to_huggingface()
