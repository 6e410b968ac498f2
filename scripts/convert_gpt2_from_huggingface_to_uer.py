#!/usr/bin/env python3
"""Convert a HuggingFace GPT-2 file (GPT2LMHeadModel or GPT2Model; .bin or .safetensors) to UER format:
a causal pre-LayerNorm transformer with the lm target, as models/gpt2/config.json describes it.

    python3 scripts/convert_gpt2_from_huggingface_to_uer.py --input_model_path gpt2/model.safetensors \\
        --output_model_path models/gpt2_model.bin
"""
import sys
from pathlib import Path

# scripts/ is not a package: make the repository's uer/ importable when run as a file.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from uer.converters import cli  # noqa: E402

if __name__ == "__main__":
    cli.gpt2_huggingface_to_uer()
