#!/usr/bin/env python3
"""Fine-tune a classifier (two feed-forward layers over the pooled encoder output) on single texts or pairs.

The code and the full usage are in uer/cli/run_classifier.py (``python3 run_classifier.py --help``).
"""
from uer.cli.run_classifier import main

if __name__ == "__main__":
    main()
