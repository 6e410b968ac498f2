#!/usr/bin/env python3
"""K-fold cross-validation of the classifier; writes out-of-fold class probabilities for stacking.

``python3 run_classifier_cv.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("classifier_cv")()
