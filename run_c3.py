#!/usr/bin/env python3
"""Fine-tune multiple choice (C3): one score per (document, question, choice) sequence, softmax over the

``python3 run_c3.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("c3")()
