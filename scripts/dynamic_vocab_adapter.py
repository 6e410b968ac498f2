#!/usr/bin/env python3
"""Rebuild a model's vocabulary rows (embedding, MLM/LM outputs) for a new vocabulary.

The code and the full usage are in uer/tools/vocab_tools.py (``python3 scripts/dynamic_vocab_adapter.py --help``).
"""
from uer.tools.vocab_tools import adapter_main

if __name__ == "__main__":
    adapter_main()
