#!/usr/bin/env python3
"""Rewrite a UER-py model file keyed with 2020-era names (embedding.word_embedding, target.mlm_linear_1,
target.nsp_linear_1, ...) to current UER-py names. Loading accepts both generations anyway; this makes
the file usable by tools that only know the current names.

    python3 scripts/convert_uer_legacy_to_current.py --input_model_path models/old_model.bin --output_model_path models/model.bin
"""


from uer.converters import cli

if __name__ == "__main__":
    cli.uer_legacy_to_current()
