#!/usr/bin/env python3
"""Export a pre-trained encoder or a fine-tuned classifier to ONNX (dynamic batch and sequence axes), checked
against PyTorch in onnxruntime.

The code and the full usage are in uer/cli/export_onnx.py (``python3 scripts/export_onnx.py --help``).
"""
from uer.cli.export_onnx import main

if __name__ == "__main__":
    main()
