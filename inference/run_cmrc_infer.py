#!/usr/bin/env python3
"""Answer the questions of a SQuAD-format file with a model fine-tuned by run_cmrc.py.

The code and the full usage are in uer/cli/run_cmrc_infer.py (``python3 inference/run_cmrc_infer.py --help``).
"""
from uer.cli.run_cmrc_infer import main

if __name__ == "__main__":
    main()
