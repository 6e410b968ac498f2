#!/usr/bin/env python3
"""Test-set features of the cross-validation fold models (UER-py's other name of run_classifier_cv_infer.py).

``python3 inference/run_classifier_infer_cv.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/infer.py.
"""
from uer.cli.infer import task_main

if __name__ == "__main__":
    task_main("classifier_cv")()
