#!/usr/bin/env python3
"""Fine-tune and evaluate on a GLUE task with HuggingFace run_glue.py's flags (a local HF model folder in,
a fine-tuned HF folder out). ``python3 run_glue.py --help``; the flags are mapped in uer/finetune/glue_args.py,
the task is uer/finetune/tasks/glue.py.
"""
from uer.cli.finetune import run_glue

if __name__ == "__main__":
    run_glue()
