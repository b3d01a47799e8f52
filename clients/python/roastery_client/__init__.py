"""Roastery notebook client: the REST API from Python, standard library only.

    from roastery_client import Client
    rc = Client("http://127.0.0.1:8080", token="...")
    for p in rc.projects.list():
        print(p["id"])
"""

from ._transport import parse_retry_after
from ._types import ItemList, Pager, Resource, has_pandas, to_dataframe
from .client import Client, poll
from .errors import (AuthenticationError, Conflict, Forbidden, IdempotencyMismatch, NotFound,
                     OperationFailed, PayloadTooLarge, PreconditionFailed, RateLimited,
                     RoasteryError, ServerError, ServiceUnavailable, Unauthorized,
                     UnsupportedMediaType, ValidationError, WaitTimeout)

__version__ = "0.1.0"

__all__ = ["Client", "Resource", "ItemList", "Pager", "to_dataframe", "has_pandas", "poll",
           "parse_retry_after", "RoasteryError", "ValidationError", "Unauthorized",
           "AuthenticationError", "Forbidden", "NotFound", "Conflict", "PreconditionFailed",
           "PayloadTooLarge", "UnsupportedMediaType", "IdempotencyMismatch", "RateLimited",
           "ServerError", "ServiceUnavailable", "WaitTimeout", "OperationFailed"]
