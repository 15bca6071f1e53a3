"""The AliceError tree. Each error knows its HTTP status and its DataChannel/JSON code.

    AliceError (500, internal)
    ├── BadRequest (400, bad_request)
    │   ├── InvalidSdp (400, invalid_sdp)
    │   ├── InvalidMessage (400, invalid_message)
    │   └── InvalidBody (422, invalid_body)
    ├── Unauthorized (401, unauthorized)
    ├── Forbidden (403, forbidden)
    ├── NotFound (404, not_found)
    │   └── SessionNotFound (404, session_not_found)
    ├── MethodNotAllowed (405, method_not_allowed)
    ├── RequestTimeout (408, request_timeout)
    ├── OwnerGone (410, owner_gone)
    ├── PayloadTooLarge (413, payload_too_large)
    ├── UnsupportedMediaType (415, unsupported_media_type)
    ├── AtCapacity (503, at_capacity)
    ├── StoreUnavailable (503, store_unavailable)
    ├── ShuttingDown (503, shutting_down)
    ├── ModelsUnavailable (503, models_unavailable)
    ├── RateLimited (429, rate_limited)
    ├── TransportUnavailable (503, transport_unavailable)
    ├── SessionUnresponsive (503, session_unresponsive)
    └── ProviderError (502, provider_error)
        ├── ProviderTimeout (504, provider_timeout)
        └── ProviderAuthError (502, provider_auth)
"""

from __future__ import annotations


class AliceError(Exception):
    """`retry_after_s`: when a client may try again (an HTTP `Retry-After`), for errors that pass."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class BadRequest(AliceError):
    status, code = 400, "bad_request"


class InvalidSdp(BadRequest):
    code = "invalid_sdp"


class InvalidMessage(BadRequest):
    code = "invalid_message"


class InvalidBody(BadRequest):
    status, code = 422, "invalid_body"


class Unauthorized(AliceError):
    status, code = 401, "unauthorized"


class Forbidden(AliceError):
    status, code = 403, "forbidden"


class NotFound(AliceError):
    status, code = 404, "not_found"


class SessionNotFound(NotFound):
    code = "session_not_found"


class MethodNotAllowed(AliceError):
    status, code = 405, "method_not_allowed"


class RequestTimeout(AliceError):
    status, code = 408, "request_timeout"


class OwnerGone(AliceError):
    status, code = 410, "owner_gone"


class PayloadTooLarge(AliceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(AliceError):
    status, code = 415, "unsupported_media_type"


class AtCapacity(AliceError):
    status, code = 503, "at_capacity"


class StoreUnavailable(AliceError):
    status, code = 503, "store_unavailable"


class ShuttingDown(AliceError):
    status, code = 503, "shutting_down"


class ModelsUnavailable(AliceError):
    status, code = 503, "models_unavailable"


class RateLimited(AliceError):
    status, code = 429, "rate_limited"


class TransportUnavailable(AliceError):
    status, code = 503, "transport_unavailable"


class SessionUnresponsive(AliceError):
    status, code = 503, "session_unresponsive"


class ProviderError(AliceError):
    """A speech or agent provider failed. `provider` names it; `retryable` says if trying again may help."""

    status, code = 502, "provider_error"

    def __init__(self, provider: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retryable = retryable

    @classmethod
    def wrap(cls, exc: BaseException, provider: str) -> ProviderError:
        """`exc` as a ProviderError naming `provider` (itself if it already is one): an ONNX or engine error,
        or a plug-in's defect, fails a turn like any provider failure."""
        if isinstance(exc, ProviderError):
            return exc
        error = cls(provider, f"{type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error


class ProviderTimeout(ProviderError):
    status, code = 504, "provider_timeout"

    def __init__(self, provider: str, message: str = "no answer before the timeout") -> None:
        super().__init__(provider, message, retryable=True)


class ProviderAuthError(ProviderError):
    code = "provider_auth"

    def __init__(self, provider: str, message: str = "the provider rejected the API key") -> None:
        super().__init__(provider, message, retryable=False)
