"""HTTP transport: auth, Idempotency-Key, retries honouring Retry-After, errors."""

import datetime
import email.utils
import http.client
import json
import logging
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from . import errors
from ._types import Resource

log = logging.getLogger("roastery_client")

USER_AGENT = "roastery-client-python/0.1"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
RETRY_STATUSES = (429, 503)


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return max(0.0, (when - now).total_seconds())


class Body:
    """A request body that can be sent again on a retry.

    From bytes, a path (streamed from disk, Content-Length known) or a binary
    file object (streamed; rewound for a retry when seekable, else sent once
    with chunked transfer encoding when its size is unknown).
    """

    def __init__(self, source):
        self._path = None
        self._file = None
        self._bytes = None
        self._start = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._bytes = bytes(source)
        elif isinstance(source, (str, os.PathLike)):
            self._path = os.fspath(source)
        elif hasattr(source, "read"):
            self._file = source
            try:
                if source.seekable():
                    self._start = source.tell()
            except (AttributeError, OSError, ValueError):
                self._start = None
        else:
            raise TypeError("body must be bytes, a path or a binary file object")
        self._opened = None
        self._sent = False

    @property
    def retryable(self):
        return self._file is None or self._start is not None or not self._sent

    def open(self):
        """(data, length or None) for one attempt."""
        self.close()
        self._sent = True
        if self._bytes is not None:
            return self._bytes, len(self._bytes)
        if self._path is not None:
            f = open(self._path, "rb")
            self._opened = f
            return f, os.fstat(f.fileno()).st_size
        f = self._file
        if self._start is not None:
            f.seek(self._start)
            try:
                end = f.seek(0, os.SEEK_END)
                f.seek(self._start)
                return f, end - self._start
            except (OSError, ValueError):
                return f, None
        return f, None

    def close(self):
        if self._opened is not None:
            self._opened.close()
            self._opened = None


class Transport:
    """Sends requests; see Client for the parameters."""

    def __init__(self, base_url, token=None, token_provider=None, timeout=30.0,
                 max_retries=5, max_retry_wait=60.0, backoff=0.5, user_agent=None,
                 opener=None, sleep=time.sleep):
        if token is not None and token_provider is not None:
            raise ValueError("give token or token_provider, not both")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.token_provider = token_provider
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.user_agent = user_agent or USER_AGENT
        self.opener = opener or urllib.request.build_opener()
        self.sleep = sleep

    def _auth(self):
        tok = self.token_provider() if self.token_provider else self.token
        if tok is None:
            return None
        tok = getattr(tok, "token", tok)  # azure-identity AccessToken
        return "Bearer " + str(tok)

    def url(self, path, query=None):
        if path.startswith("http://") or path.startswith("https://"):
            url = path
        else:
            url = self.base_url + (path if path.startswith("/") else "/" + path)
        q = {}
        for k, v in (query or {}).items():
            if v is None:
                continue
            q[k] = ("true" if v else "false") if isinstance(v, bool) else v
        if q:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(q)
        return url

    def _wait_for(self, attempt, retry_after):
        if retry_after is not None:
            return retry_after
        return min(self.backoff * (2 ** attempt), self.max_retry_wait) * random.uniform(0.5, 1.0)

    def send(self, method, path, query=None, json_body=None, body=None, headers=None,
             idempotency_key=None, auth=True, stream=False, timeout=None, retries=None):
        """One logical call, retried on 429/503 and connection failures.

        Returns (status, headers, data) where data is bytes, or the open
        response when stream is true. Raises RoasteryError for error answers.
        """
        method = method.upper()
        hdrs = {"User-Agent": self.user_agent,
                "Accept": "application/json, application/problem+json;q=0.9, */*;q=0.1"}
        hdrs.update(headers or {})
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            hdrs.setdefault("Content-Type", "application/json")
        payload = Body(body) if body is not None else None
        if method in WRITE_METHODS:
            hdrs.setdefault("Idempotency-Key", idempotency_key or str(uuid.uuid4()))
        url = self.url(path, query)
        max_retries = self.max_retries if retries is None else retries
        attempt = 0
        try:
            while True:
                req_headers = dict(hdrs)
                if auth:
                    a = self._auth()
                    if a:
                        req_headers["Authorization"] = a
                data = None
                if payload is not None:
                    data, length = payload.open()
                    if length is not None:
                        req_headers["Content-Length"] = str(length)
                req = urllib.request.Request(url, data=data, headers=req_headers, method=method)
                try:
                    resp = self.opener.open(req, timeout=timeout or self.timeout)
                except urllib.error.HTTPError as e:
                    resp_headers = {k.lower(): v for k, v in e.headers.items()}
                    err_body = e.read()
                    e.close()
                    err = errors.error_from_response(e.code, resp_headers, err_body, method, url)
                    retryable = e.code in RETRY_STATUSES or err.slug == "idempotency-in-progress"
                    if (retryable and attempt < max_retries
                            and (payload is None or payload.retryable)):
                        wait = self._wait_for(attempt, parse_retry_after(
                            resp_headers.get("retry-after")))
                        if wait <= self.max_retry_wait:
                            log.info("%s %s answered %d; retrying in %.2fs", method, url,
                                     e.code, wait)
                            self.sleep(wait)
                            attempt += 1
                            continue
                    raise err from None
                except (urllib.error.URLError, http.client.HTTPException, ConnectionError,
                        socket.timeout) as e:
                    if attempt < max_retries and (payload is None or payload.retryable):
                        wait = self._wait_for(attempt, None)
                        log.info("%s %s failed (%s); retrying in %.2fs", method, url, e, wait)
                        self.sleep(wait)
                        attempt += 1
                        continue
                    raise
                resp_headers = {k.lower(): v for k, v in resp.headers.items()}
                if stream:
                    return resp.status, resp_headers, resp
                with resp:
                    return resp.status, resp_headers, resp.read()
        finally:
            if payload is not None:
                payload.close()

    def json(self, method, path, **kw):
        """send(), answering a Resource (dict) or None for an empty body."""
        status, headers, data = self.send(method, path, **kw)
        value = json.loads(data) if data else None
        if isinstance(value, dict):
            value = Resource(value)
            value.status = status
            value.headers = headers
            value.etag = headers.get("etag")
            value.location = headers.get("location")
            value.replayed = headers.get("idempotent-replayed") == "true"
        return value
