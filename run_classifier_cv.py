#!/usr/bin/env python3
"""K-fold cross-validation of the classifier; writes out-of-fold class probabilities for stacking.

The code and the full usage are in uer/cli/run_classifier_cv.py (``python3 run_classifier_cv.py --help``).
"""
from uer.cli.run_classifier_cv import main

if __name__ == "__main__":
    main()
