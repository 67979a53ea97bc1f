"""The platform's Lambda responders: code that runs in AWS Lambda, never imported by Pulumi programs at run time.

Each responder lives in ``lambdas/<function>/app.py`` with ``handler(event, context)``; shared code is the
``responder_common`` package, placed at the archive root next to ``app.py`` (see :mod:`lambdas.package`).
"""
