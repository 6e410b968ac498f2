#!/usr/bin/env python3
"""Answer the questions of a SQuAD-format file with a model fine-tuned by run_cmrc.py.

``python3 inference/run_cmrc_infer.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/infer.py.
"""
from uer.cli.infer import task_main

if __name__ == "__main__":
    task_main("mrc")()
