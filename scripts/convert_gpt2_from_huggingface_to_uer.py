#!/usr/bin/env python3
"""Convert a HuggingFace GPT-2 file (GPT2LMHeadModel or GPT2Model; .bin or .safetensors) to UER format:
a causal pre-LayerNorm transformer with the lm target, as models/gpt2/config.json describes it.

    python3 scripts/convert_gpt2_from_huggingface_to_uer.py --input_model_path gpt2/model.safetensors \\
        --output_model_path models/gpt2_model.bin
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.gpt2_huggingface_to_uer()
