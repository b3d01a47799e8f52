"""Exceptions: problem+json answers become RoasteryError subclasses."""

import json

PROBLEM_BASE = "https://roastery.dev/problems/"


class RoasteryError(Exception):
    """An error answer (RFC 9457 problem details) from the Roastery API."""

    def __init__(self, status, type=None, title=None, detail=None, errors=None,
                 request_id=None, instance=None, headers=None, body=None, method=None,
                 url=None):
        self.status = status
        self.type = type or "about:blank"
        self.title = title or ""
        self.detail = detail or ""
        self.errors = list(errors or [])
        self.request_id = request_id
        self.instance = instance
        self.headers = dict(headers or {})
        self.body = body
        self.method = method
        self.url = url
        super().__init__(self._message())

    @property
    def slug(self):
        """The last part of `type`, e.g. "validation" or "four-eyes"."""
        return self.type.rsplit("/", 1)[-1]

    @property
    def fields(self):
        """Names of the fields in `errors`."""
        return [e.get("field") for e in self.errors]

    @property
    def retry_after(self):
        """The Retry-After header, as sent (or None)."""
        return self.headers.get("retry-after")

    def _message(self):
        msg = f"{self.status} {self.slug}: {self.detail or self.title}"
        if self.errors:
            msg += " [" + "; ".join(f"{e.get('field')}: {e.get('reason')}"
                                    for e in self.errors) + "]"
        if self.request_id:
            msg += f" (request {self.request_id})"
        return msg


class ValidationError(RoasteryError):
    """400: the request is malformed or a field is invalid; see `.errors`."""


class Unauthorized(RoasteryError):
    """401: missing, expired or wrongly addressed token."""


AuthenticationError = Unauthorized


class Forbidden(RoasteryError):
    """403: a valid token without the right (e.g. four-eyes)."""


class NotFound(RoasteryError):
    """404: no such resource, or one the caller may not see."""


class Conflict(RoasteryError):
    """409: the resource's state does not allow this."""


class PreconditionFailed(RoasteryError):
    """412: the If-Match ETag is no longer current."""


class PayloadTooLarge(RoasteryError):
    """413: the body is over the server's limit."""


class UnsupportedMediaType(RoasteryError):
    """415: wrong Content-Type or Content-Encoding."""


class IdempotencyMismatch(RoasteryError):
    """422: the Idempotency-Key was used before with another request."""


class RateLimited(RoasteryError):
    """429: over the request rate (raised once retries are used up)."""


class ServerError(RoasteryError):
    """5xx answers."""


class ServiceUnavailable(ServerError):
    """503: database or store unavailable (raised once retries are used up)."""


_BY_STATUS = {400: ValidationError, 401: Unauthorized, 403: Forbidden, 404: NotFound,
              409: Conflict, 412: PreconditionFailed, 413: PayloadTooLarge,
              415: UnsupportedMediaType, 422: IdempotencyMismatch, 429: RateLimited,
              503: ServiceUnavailable}


class WaitTimeout(TimeoutError):
    """wait() gave up before the resource reached a terminal state."""

    def __init__(self, message, last=None):
        super().__init__(message)
        self.last = last


class OperationFailed(Exception):
    """A waited-for operation, run or promotion ended in a failed state."""

    def __init__(self, message, resource=None):
        super().__init__(message)
        self.resource = resource


def error_from_response(status, headers, body, method=None, url=None):
    """Builds the RoasteryError subclass for an error answer."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    problem = {}
    if body:
        try:
            parsed = json.loads(body.decode("utf-8", "replace") if isinstance(body, bytes)
                                else body)
            if isinstance(parsed, dict):
                problem = parsed
        except ValueError:
            pass
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else RoasteryError)
    detail = problem.get("detail")
    if detail is None and body and not problem:
        detail = (body.decode("utf-8", "replace") if isinstance(body, bytes) else body)[:500]
    return cls(status, type=problem.get("type"), title=problem.get("title"), detail=detail,
               errors=problem.get("errors"), request_id=problem.get("request_id"),
               instance=problem.get("instance"), headers=headers, body=body, method=method,
               url=url)
