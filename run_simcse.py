#!/usr/bin/env python3
"""Train sentence embeddings with SimCSE (unsupervised or on pairs); the model loads into extract_features.py.

``python3 run_simcse.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("simcse")()
