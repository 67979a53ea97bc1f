"""Baseline for benchmarks/inference_bench.py: the same model and feature code on Flask + gunicorn.

This is the stack SageMaker's own scikit-learn framework container uses, written the plain way:
one ``predict_proba`` per request, the standard library's ``json`` and ``csv``. It computes features
exactly as the inference server does (``compute_features`` of the shared spec, vector in
``spec.feature_names`` order), so the benchmark compares servers, not feature code.

Run: ``MODEL_DIR=... gunicorn -w 2 -b 127.0.0.1:PORT --chdir benchmarks baseline_flask_app:app``
(with the repository root on PYTHONPATH).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import joblib
import numpy as np
from flask import Flask, Response, request

from mlops.features import get_spec
from mlops.features.spec import compute_features

MODEL_DIR = Path(os.environ.get("MODEL_DIR", "/opt/ml/model"))
METADATA = json.loads((MODEL_DIR / "model-metadata.json").read_text())
SPEC = get_spec(METADATA["feature_spec"])
MODEL = joblib.load(MODEL_DIR / "model.joblib")

app = Flask(__name__)


def _error(message: str, status: int) -> Response:
    return Response(json.dumps({"message": message}), status=status, mimetype="application/json")


@app.get("/ping")
def ping() -> Response:
    return Response('{"status":"healthy"}', status=200, mimetype="application/json")


@app.post("/invocations")
def invocations() -> Response:
    content_type = (request.content_type or "").split(";")[0].strip()
    body = request.get_data()
    try:
        if content_type == "text/csv":
            records = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
        elif content_type == "application/json":
            document = json.loads(body)
            records = document.get("instances", [document])
        else:
            return _error(f"unsupported content type {content_type!r}", 415)
        matrix = np.array(
            [
                [features[name] for name in SPEC.feature_names]
                for features in (compute_features(SPEC, r) for r in records)
            ],
            dtype=np.float64,
        )
    except (ValueError, TypeError, KeyError) as exc:
        return _error(str(exc), 400)
    probabilities = MODEL.predict_proba(matrix)[:, 1].tolist()
    if "text/csv" in request.headers.get("Accept", ""):
        return Response("\n".join(map(repr, probabilities)) + "\n", mimetype="text/csv")
    return Response(json.dumps({"predictions": probabilities}), mimetype="application/json")
