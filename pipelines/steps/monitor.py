"""Monitor step: the platform's drift job, run by the monitoring pipeline's processing step.

Runs as ``python3 monitor.py <drift options>`` in the SageMaker scikit-learn processing container, with the
``mlops`` package (feature specs and the monitoring engine) downloaded to ``$MLOPS_CODE_DIR``
(``/opt/ml/processing/input/code_lib`` by default; ``--code-dir`` overrides both). Every other option is the
drift command's (``python -m mlops.monitoring.drift --help``): the job reads capture, reference and ground truth
from S3 itself, writes its report to S3 and publishes CloudWatch metrics, so the step needs no processing
inputs or outputs besides the code.

The exit status is the command's: 0 analysed, 2 unusable input, 1 results not delivered.
"""

from __future__ import annotations

import os
import sys

DEFAULT_CODE_DIR = "/opt/ml/processing/input/code_lib"


def split_code_dir(argv: list[str]) -> tuple[str, list[str]]:
    """``--code-dir DIR`` (or ``--code-dir=DIR``) taken out of ``argv``; the rest is the drift command's."""
    code_dir = os.environ.get("MLOPS_CODE_DIR", DEFAULT_CODE_DIR)
    rest: list[str] = []
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--code-dir":
            code_dir = next(arguments, code_dir)
        elif argument.startswith("--code-dir="):
            code_dir = argument.split("=", 1)[1]
        else:
            rest.append(argument)
    return code_dir, rest


def main(argv: list[str] | None = None) -> int:
    code_dir, arguments = split_code_dir(list(sys.argv[1:] if argv is None else argv))
    if os.path.isdir(code_dir) and code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    from mlops.monitoring.drift.cli import main as drift

    return drift(arguments)


if __name__ == "__main__":
    sys.exit(main())
