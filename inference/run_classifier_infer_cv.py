#!/usr/bin/env python3
"""Test-set features of the cross-validation fold models (UER-py's other name of run_classifier_cv_infer.py).

The code and the full usage are in uer/cli/run_classifier_cv_infer.py (``python3 inference/run_classifier_infer_cv.py --help``).
"""
from uer.cli.run_classifier_cv_infer import main

if __name__ == "__main__":
    main(prog="run_classifier_infer_cv.py")
