#!/usr/bin/env python3
"""Predict every task's label with a multi-task classifier (run_classifier_mt.py).

``python3 inference/run_classifier_mt_infer.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/infer.py.
"""
from uer.cli.infer import task_main

if __name__ == "__main__":
    task_main("classifier_mt")()
