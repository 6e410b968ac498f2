#!/usr/bin/env python3
"""Tag a file with a model fine-tuned by run_ner.py.

The code and the full usage are in uer/cli/run_ner_infer.py (``python3 inference/run_ner_infer.py --help``).
"""
from uer.cli.run_ner_infer import main

if __name__ == "__main__":
    main()
