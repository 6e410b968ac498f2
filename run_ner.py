#!/usr/bin/env python3
"""Fine-tune a sequence labeller (named entity recognition), optionally with a CRF (--crf_target).

The code and the full usage are in uer/cli/run_ner.py (``python3 run_ner.py --help``).
"""
from uer.cli.run_ner import main

if __name__ == "__main__":
    main()
