#!/usr/bin/env python3
"""Document-based question answering as pair classification: is sentence text_b an answer to question text_a?

``python3 run_dbqa.py --help``; the task's code is in uer/finetune/tasks/, the command in uer/cli/finetune.py.
"""
from uer.cli.finetune import task_main

if __name__ == "__main__":
    task_main("dbqa")()
