"""Results: dicts with response metadata, lists and lazy cursor pages."""


def _pandas():
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - depends on the notebook
        raise ImportError("to_dataframe() needs pandas; the rest of roastery_client "
                          "works without it") from e
    return pandas


def has_pandas():
    """True when pandas can be imported (DataFrame helpers work)."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def to_dataframe(obj):
    """A pandas DataFrame from a Pager, a list of dicts or a dict with `items`."""
    pd = _pandas()
    if isinstance(obj, dict) and "items" in obj:
        obj = obj["items"]
    rows = list(obj)
    if rows and all(isinstance(r, dict) for r in rows):
        return pd.json_normalize(rows)
    return pd.DataFrame(rows)


class Resource(dict):
    """A JSON object answered by the API, with the response's metadata.

    `status` (HTTP status), `etag`, `location` (e.g. the operation's URL),
    `replayed` (an Idempotency-Key replay) and `headers` (lower-cased).
    """

    status = None
    etag = None
    location = None
    replayed = False
    headers = {}

    @property
    def operation_id(self):
        """The operation named by `Location` or by the body, if any."""
        loc = self.location or ""
        if "/operations/" in loc:
            return loc.rsplit("/", 1)[-1]
        return self.get("operation_id")

    def to_dataframe(self):
        """Its `items` as a DataFrame (pandas)."""
        return to_dataframe(self.get("items", []))


class ItemList(list):
    """The items of an unpaginated list."""

    def to_dataframe(self):
        """As a pandas DataFrame (nested objects flattened with dots)."""
        return to_dataframe(self)


class Pager:
    """Iterates every item of a cursor-paginated list, fetching pages lazily.

    `pages()` yields each page (a Resource with `items` and `next_cursor`);
    `to_list()` and `to_dataframe()` read everything.
    """

    def __init__(self, fetch, params=None, items_key="items"):
        self._fetch = fetch  # fetch(params) -> Resource page
        self._params = dict(params or {})
        self._items_key = items_key

    def pages(self):
        params = dict(self._params)
        seen = set()
        while True:
            page = self._fetch(params)
            yield page
            cursor = page.get("next_cursor")
            if not cursor or cursor in seen:
                return
            seen.add(cursor)
            params["cursor"] = cursor

    def __iter__(self):
        for page in self.pages():
            yield from page.get(self._items_key) or []

    def first(self):
        """The first item, or None."""
        return next(iter(self), None)

    def to_list(self):
        return ItemList(self)

    def to_dataframe(self):
        return to_dataframe(list(self))
