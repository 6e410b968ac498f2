#!/usr/bin/env python3
"""Serve a fine-tuned classifier's predictions over HTTP (POST /predict, GET /health, GET /info).

The code and the full usage are in uer/cli/prediction_server.py (``python3 scripts/prediction_server.py --help``);
the Python client is uer.serving.client.PredictionClient.
"""
from uer.cli.prediction_server import main

if __name__ == "__main__":
    main()
