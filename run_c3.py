#!/usr/bin/env python3
"""Fine-tune multiple choice (C3): one score per (document, question, choice) sequence, softmax over the

The code and the full usage are in uer/cli/run_c3.py (``python3 run_c3.py --help``).
"""
from uer.cli.run_c3 import main

if __name__ == "__main__":
    main()
