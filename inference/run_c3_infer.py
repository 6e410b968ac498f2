#!/usr/bin/env python3
"""Predict the choice of every question of a C3-format file with a model fine-tuned by run_c3.py.

``python3 inference/run_c3_infer.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/infer.py.
"""
from uer.cli.infer import task_main

if __name__ == "__main__":
    task_main("c3")()
