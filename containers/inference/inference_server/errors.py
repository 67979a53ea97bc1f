"""The inference server's errors: start-up failures and rejected requests."""

from __future__ import annotations


class InferenceServerError(Exception):
    """Base class of the inference server's errors."""


class ModelLoadError(InferenceServerError):
    """The model artifact cannot be served (missing, corrupt, or not matching its feature spec).

    Raised at start-up only, so the container exits non-zero instead of answering ``/ping``.
    """


class RequestError(InferenceServerError):
    """A request the server refuses: answered with ``status`` and a JSON body carrying ``message``.

    ``code`` is a short, payload-free token that is safe to log; ``message`` may quote the payload
    (it goes back to the caller only, never to the logs). ``close`` ends the connection after the answer
    (a request whose body did not arrive in time: its remaining bytes would be read as the next request).
    """

    def __init__(self, status: int, code: str, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.close = close  # answer with ``connection: close``: what is left of the request cannot be trusted
