#!/usr/bin/env python3
"""Predict labels with a model fine-tuned by run_classifier.py (or run_dbqa.py).

The code and the full usage are in uer/cli/run_classifier_infer.py (``python3 inference/run_classifier_infer.py --help``).
"""
from uer.cli.run_classifier_infer import main

if __name__ == "__main__":
    main()
