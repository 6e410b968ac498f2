#!/usr/bin/env python3
"""More unlabelled training texts for data distillation: unknown-token noise, same-part-of-speech word swaps and
n-gram sampling (ERNIE Slim).

The code and the full usage are in uer/tools/augment.py (``python3 scripts/augment_data.py --help``).
"""
from uer.tools.augment import main

if __name__ == "__main__":
    main()
