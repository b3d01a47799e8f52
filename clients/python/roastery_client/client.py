"""The Roastery API client: one namespace per resource of openapi.yaml."""

import json
import os
import shutil
import time
import urllib.parse

from . import errors
from ._transport import Transport
from ._types import ItemList, Pager, Resource, to_dataframe

API = "/api/v1"


def _q(segment):
    return urllib.parse.quote(str(segment), safe="")


def _clean(d):
    return {k: v for k, v in d.items() if v is not None}


def _etag(value):
    """An If-Match value from an ETag string or a resource read before."""
    if value is None:
        return None
    if isinstance(value, Resource) and value.etag:
        return value.etag
    if isinstance(value, dict) and "version" in value:
        return f'"v{value["version"]}"'
    return str(value)


def _if_match(etag):
    e = _etag(etag)
    return {"If-Match": e} if e else None


def poll(fetch, done, timeout=600.0, interval=0.25, max_interval=5.0, what="resource"):
    """Calls fetch() with a growing pause until done(result); WaitTimeout after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fetch()
        if done(last):
            return last
        left = deadline - time.monotonic()
        if left <= 0:
            state = last.get("state") if isinstance(last, dict) else None
            raise errors.WaitTimeout(f"{what} still {state!r} after {timeout:g}s", last)
        time.sleep(min(interval, left))
        interval = min(interval * 1.5, max_interval)


class _Namespace:
    def __init__(self, client):
        self._c = client
        self._t = client._transport

    def _get(self, path, **query):
        return self._t.json("GET", path, query=_clean(query))

    def _items(self, path, **query):
        page = self._get(path, **query)
        return ItemList(page.get("items", []))

    def _pager(self, path, limit=None, **query):
        params = _clean(dict(query, limit=limit))
        return Pager(lambda p: self._t.json("GET", path, query=p), params)


class Operations(_Namespace):
    """Durable units of slow work and their actions."""

    TERMINAL = ("succeeded", "failed", "canceled")

    def list(self, state=None, kind=None, subject=None, limit=None):
        return self._pager(f"{API}/operations", limit, state=state, kind=kind, subject=subject)

    def get(self, operation_id):
        return self._get(f"{API}/operations/{_q(operation_id)}")

    def cancel(self, operation_id, idempotency_key=None):
        return self._t.json("POST", f"{API}/operations/{_q(operation_id)}/cancel",
                            idempotency_key=idempotency_key)

    def wait(self, operation, timeout=600.0, interval=0.25, raise_on_failure=True):
        """Polls until succeeded, failed or canceled; OperationFailed unless succeeded."""
        oid = _operation_id(operation)
        op = poll(lambda: self.get(oid), lambda o: o["state"] in self.TERMINAL, timeout,
                  interval, what=f"operation {oid}")
        if raise_on_failure and op["state"] != "succeeded":
            err = op.get("error") or {}
            raise errors.OperationFailed(
                f"operation {oid} ({op.get('kind')}) {op['state']}: "
                f"{err.get('code', '')} {err.get('message', '')}".strip(), op)
        return op


def _operation_id(value):
    if isinstance(value, Resource) and value.operation_id:
        return value.operation_id
    if isinstance(value, dict):
        if value.get("operation_id"):
            return value["operation_id"]
        return value["id"]
    value = str(value)
    return value.rsplit("/", 1)[-1] if "/" in value else value


class Identity(_Namespace):
    """The people Roastery has seen (admins)."""

    def list(self, name=None, limit=None):
        return self._pager(f"{API}/users", limit, name=name)


class Audit(_Namespace):
    """The append-only audit log, newest first (admins)."""

    def list(self, actor=None, action=None, subject=None, outcome=None, limit=None):
        return self._pager(f"{API}/audit", limit, actor=actor, action=action, subject=subject,
                           outcome=outcome)


class Projects(_Namespace):
    """Projects, members and compute quotas."""

    def list(self, limit=None):
        return self._pager(f"{API}/projects", limit)

    def get(self, project):
        return self._get(f"{API}/projects/{_q(project)}")

    def create(self, id, display_name, description=None, monthly_budget_usd=None,
               compute_quota_cores=None, idempotency_key=None):
        body = _clean(dict(id=id, display_name=display_name, description=description,
                           monthly_budget_usd=monthly_budget_usd,
                           compute_quota_cores=compute_quota_cores))
        return self._t.json("POST", f"{API}/projects", json_body=body,
                            idempotency_key=idempotency_key)

    def update(self, project, etag=None, **changes):
        """PATCH the given fields; `etag` (or the project read before) sends If-Match."""
        return self._t.json("PATCH", f"{API}/projects/{_q(project)}", json_body=changes,
                            headers=_if_match(etag))

    def members(self, project):
        return self._items(f"{API}/projects/{_q(project)}/members")

    def put_member(self, project, oid, role, name=None):
        return self._t.json("PUT", f"{API}/projects/{_q(project)}/members/{_q(oid)}",
                            json_body=_clean(dict(role=role, name=name)))

    def remove_member(self, project, oid):
        return self._t.json("DELETE", f"{API}/projects/{_q(project)}/members/{_q(oid)}")

    def quotas(self, project):
        return self._items(f"{API}/projects/{_q(project)}/quotas")

    def set_quota(self, project, family, max_nodes):
        return self._t.json("PUT", f"{API}/projects/{_q(project)}/quotas/{_q(family)}",
                            json_body={"max_nodes": max_nodes})


class Datasets(_Namespace):
    """Datasets, their immutable versions, uploads, profiles and rows."""

    def _base(self, project, dataset=None, number=None):
        p = f"{API}/projects/{_q(project)}/datasets"
        if dataset is not None:
            p += f"/{_q(dataset)}"
        if number is not None:
            p += f"/versions/{int(number)}"
        return p

    def list(self, project):
        return self._items(self._base(project))

    def get(self, project, dataset):
        return self._get(self._base(project, dataset))

    def create(self, project, name, description=None, schema_kind=None, idempotency_key=None):
        return self._t.json("POST", self._base(project),
                            json_body=_clean(dict(name=name, description=description,
                                                  schema_kind=schema_kind)),
                            idempotency_key=idempotency_key)

    def versions(self, project, dataset):
        return self._items(self._base(project, dataset) + "/versions")

    def version(self, project, dataset, number):
        return self._get(self._base(project, dataset, number))

    def upload(self, project, dataset, source, on_error=None, gzip=None, timeout=None):
        """Uploads a CSV as a new version, streamed from a path, a binary file or bytes.

        A path or seekable file is sent with Content-Length and re-sent on a
        retry; a pipe goes once with chunked encoding. `gzip=True` (default
        for paths ending in .gz) sends Content-Encoding: gzip. Answers the
        version (status 202 and its ingestion operation in `operation_id`, or
        200 when these bytes already are a version).
        """
        if gzip is None:
            gzip = isinstance(source, (str, os.PathLike)) and os.fspath(source).endswith(".gz")
        headers = {"Content-Type": "text/csv"}
        if gzip:
            headers["Content-Encoding"] = "gzip"
        return self._t.json("POST", self._base(project, dataset) + "/versions",
                            query=_clean(dict(on_error=on_error)), body=source, headers=headers,
                            timeout=timeout or max(self._t.timeout, 600))

    def from_artifact(self, project, dataset, key, on_error=None, idempotency_key=None):
        """A new version from an artifact already in the store."""
        return self._t.json("POST", self._base(project, dataset) + "/versions",
                            query=_clean(dict(on_error=on_error)),
                            json_body={"source": {"key": key}}, idempotency_key=idempotency_key)

    def wait_version(self, project, dataset, number, timeout=600.0, raise_on_failure=True):
        """Polls a version until ready, rejected or failed."""
        v = poll(lambda: self.version(project, dataset, number),
                 lambda v: v["state"] not in ("pending", "ingesting"), timeout,
                 what=f"dataset version {dataset}/{number}")
        if raise_on_failure and v["state"] != "ready":
            raise errors.OperationFailed(f"dataset version {dataset}/{number} {v['state']}: "
                                         f"{json.dumps(v.get('result'))[:500]}", v)
        return v

    def profile(self, project, dataset, number):
        return self._get(self._base(project, dataset, number) + "/profile")

    def rows(self, project, dataset, number, limit=1000):
        """Every canonical row, page by page (limit rows a page, at most 1000)."""
        return self._pager(self._base(project, dataset, number) + "/rows", limit)

    def daily_totals(self, project, dataset, number, store, product=None):
        return self._get(self._base(project, dataset, number) + "/daily-totals", store=store,
                         product=product)

    def download(self, project, dataset, number, dest=None, quarantine=False):
        """The canonical (or quarantine) CSV: written to dest (path or file), else bytes."""
        name = "quarantine.csv" if quarantine else "canonical.csv"
        return self._c._download(self._base(project, dataset, number) + "/" + name, dest)


class Compute(_Namespace):
    """Compute requests: priced, decided by quota and budget or an admin."""

    STABLE = ("ready", "planned", "failed", "rejected", "deleted")

    def list(self, project=None, state=None, limit=None):
        path = f"{API}/projects/{_q(project)}/compute" if project else f"{API}/compute"
        return self._pager(path, limit, state=state)

    def get(self, compute_id):
        return self._get(f"{API}/compute/{_q(compute_id)}")

    def request(self, project, name, kind, vm_size=None, region=None, min_nodes=None,
                max_nodes=None, idle_minutes=None, priority=None, expires_at=None,
                idempotency_key=None):
        body = _clean(dict(name=name, kind=kind, vm_size=vm_size, region=region,
                           min_nodes=min_nodes, max_nodes=max_nodes, idle_minutes=idle_minutes,
                           priority=priority, expires_at=expires_at))
        return self._t.json("POST", f"{API}/projects/{_q(project)}/compute", json_body=body,
                            idempotency_key=idempotency_key)

    def update(self, compute_id, etag=None, **changes):
        return self._t.json("PATCH", f"{API}/compute/{_q(compute_id)}", json_body=changes,
                            headers=_if_match(etag))

    def delete(self, compute_id, etag=None):
        return self._t.json("DELETE", f"{API}/compute/{_q(compute_id)}", headers=_if_match(etag))

    def plan(self, compute_id):
        """The rendered Terraform root module (main.tf.json)."""
        return self._get(f"{API}/compute/{_q(compute_id)}/plan")

    def approve(self, compute_id, reason=None, etag=None, idempotency_key=None):
        return self._t.json("POST", f"{API}/compute/{_q(compute_id)}/approve",
                            json_body=_clean(dict(reason=reason)), headers=_if_match(etag),
                            idempotency_key=idempotency_key)

    def reject(self, compute_id, reason, etag=None, idempotency_key=None):
        return self._t.json("POST", f"{API}/compute/{_q(compute_id)}/reject",
                            json_body={"reason": reason}, headers=_if_match(etag),
                            idempotency_key=idempotency_key)

    def retry(self, compute_id, etag=None, idempotency_key=None):
        return self._t.json("POST", f"{API}/compute/{_q(compute_id)}/retry",
                            headers=_if_match(etag), idempotency_key=idempotency_key)

    def wait(self, compute_id, until=STABLE, timeout=600.0):
        """Polls until the compute's state is one of `until` (default: a stable state)."""
        cid = compute_id["id"] if isinstance(compute_id, dict) else compute_id
        return poll(lambda: self.get(cid), lambda c: c["state"] in until, timeout,
                    what=f"compute {cid}")


class Prices(_Namespace):
    """Hourly VM prices (admins change them)."""

    def list(self, region=None):
        return self._items(f"{API}/prices", region=region)

    def put(self, region, vm_size, family, vcpus, memory_gib, dedicated_hourly_usd,
            low_priority_hourly_usd, etag=None):
        body = dict(family=family, vcpus=vcpus, memory_gib=memory_gib,
                    dedicated_hourly_usd=dedicated_hourly_usd,
                    low_priority_hourly_usd=low_priority_hourly_usd)
        return self._t.json("PUT", f"{API}/prices/{_q(region)}/{_q(vm_size)}", json_body=body,
                            headers=_if_match(etag))


class Runs(_Namespace):
    """Training runs: start, follow, metrics, artifacts, compare."""

    TERMINAL = ("completed", "failed", "canceled")

    def list(self, project, experiment=None, state=None, limit=None):
        return self._pager(f"{API}/projects/{_q(project)}/runs", limit, experiment=experiment,
                           state=state)

    def start(self, project, dataset, compute, experiment=None, dataset_version=None,
              algorithm=None, params=None, horizon_days=None, backtest_days=None,
              rolling_origins=None, seed=None, idempotency_key=None):
        body = _clean(dict(dataset=dataset, compute=compute, experiment=experiment,
                           dataset_version=dataset_version, algorithm=algorithm, params=params,
                           horizon_days=horizon_days, backtest_days=backtest_days,
                           rolling_origins=rolling_origins, seed=seed))
        return self._t.json("POST", f"{API}/projects/{_q(project)}/runs", json_body=body,
                            idempotency_key=idempotency_key)

    def get(self, run_id):
        return self._get(f"{API}/runs/{_q(_id(run_id))}")

    def cancel(self, run_id, idempotency_key=None):
        return self._t.json("POST", f"{API}/runs/{_q(_id(run_id))}/cancel",
                            idempotency_key=idempotency_key)

    def wait(self, run_id, timeout=1800.0, interval=0.5, raise_on_failure=True):
        """Polls until completed, failed or canceled; OperationFailed unless completed."""
        rid = _id(run_id)
        run = poll(lambda: self.get(rid), lambda r: r["state"] in self.TERMINAL, timeout,
                   interval, what=f"run {rid}")
        if raise_on_failure and run["state"] != "completed":
            raise errors.OperationFailed(f"run {rid} {run['state']}: {run.get('error')}", run)
        return run

    def metrics(self, run_id, name=None):
        """Metrics as they arrived: items of name, step, value, at."""
        return self._items(f"{API}/runs/{_q(_id(run_id))}/metrics", name=name)

    def logs(self, run_id):
        """The log so far, as text."""
        _, _, data = self._t.send("GET", f"{API}/runs/{_q(_id(run_id))}/logs")
        return data.decode("utf-8", "replace")

    def follow_logs(self, run_id, timeout=3600.0):
        """Yields log lines as they are written, until the run ends."""
        _, _, resp = self._t.send("GET", f"{API}/runs/{_q(_id(run_id))}/logs",
                                  query={"follow": True}, stream=True, timeout=timeout)
        with resp:
            for line in resp:
                yield line.decode("utf-8", "replace").rstrip("\n")

    def artifacts(self, run_id):
        return self._items(f"{API}/runs/{_q(_id(run_id))}/artifacts")

    def artifact(self, run_id, name, dest=None):
        """One artifact: parsed JSON for .json, else bytes; or written to dest."""
        path = f"{API}/runs/{_q(_id(run_id))}/artifacts/{_q(name)}"
        if dest is not None:
            return self._c._download(path, dest)
        _, headers, data = self._t.send("GET", path)
        if "json" in headers.get("content-type", ""):
            return json.loads(data)
        return data

    def compare(self, runs, metrics=("wape", "mape", "rmse", "bias")):
        """One row per run: params and overall/baseline metrics (a DataFrame with pandas)."""
        rows = []
        for r in runs:
            run = r if isinstance(r, dict) and "metrics" in r else self.get(_id(r))
            row = {"run": run["number"], "id": run["id"], "state": run["state"],
                   "algorithm": run["algorithm"]}
            for k, v in (run.get("params") or {}).items():
                row[f"params.{k}"] = v
            m = run.get("metrics") or {}
            for name in metrics:
                if name in (m.get("overall") or {}):
                    row[name] = m["overall"][name]
            for base, bm in (m.get("baselines") or {}).items():
                if isinstance(bm, dict) and "wape" in bm:
                    row[f"{base}.wape"] = bm["wape"]
            rows.append(row)
        rows = ItemList(rows)
        try:
            return to_dataframe(rows).set_index("run")
        except ImportError:
            return rows


def _id(value):
    return value["id"] if isinstance(value, dict) else str(value)


class Models(_Namespace):
    """The model registry: versions from runs, promotions, rollback, predict."""

    def _base(self, project, name=None, version=None):
        p = f"{API}/projects/{_q(project)}/models"
        if name is not None:
            p += f"/{_q(name)}"
        if version is not None:
            p += f"/versions/{int(version)}"
        return p

    def list(self, project):
        return self._items(self._base(project))

    def get(self, project, name):
        return self._get(self._base(project, name))

    def create(self, project, name, description=None, idempotency_key=None):
        return self._t.json("POST", self._base(project),
                            json_body=_clean(dict(name=name, description=description)),
                            idempotency_key=idempotency_key)

    def rollback(self, project, name, reason, idempotency_key=None):
        return self._t.json("POST", self._base(project, name) + "/rollback",
                            json_body={"reason": reason}, idempotency_key=idempotency_key)

    def versions(self, project, name):
        return self._items(self._base(project, name) + "/versions")

    def version(self, project, name, version):
        return self._get(self._base(project, name, version))

    def register(self, project, name, run_id, description=None, idempotency_key=None):
        """Registers a completed run as the model's next version."""
        return self._t.json("POST", self._base(project, name) + "/versions",
                            json_body=_clean(dict(run_id=_id(run_id), description=description)),
                            idempotency_key=idempotency_key)

    def archive(self, project, name, version, idempotency_key=None):
        return self._t.json("POST", self._base(project, name, version) + "/archive",
                            idempotency_key=idempotency_key)

    def predict(self, project, name, version, rows):
        """Scores feature rows (dicts of feature name to value) with a version."""
        return self._t.json("POST", self._base(project, name, version) + "/predict",
                            json_body={"rows": list(rows)})

    def promote(self, project, name, version, target, reason=None, idempotency_key=None):
        """Proposes a version for staging or production; answers the promotion."""
        return self._t.json("POST", self._base(project, name, version) + "/promotions",
                            json_body=_clean(dict(target=target, reason=reason)),
                            idempotency_key=idempotency_key)

    def promotions(self, project, name):
        return self._items(self._base(project, name) + "/promotions")


class Promotions(_Namespace):
    """Promotions across projects: the approvals queue, approve, reject, wait."""

    SETTLED = ("gates_failed", "pending_approval", "completed", "rejected", "failed")

    def list(self, state=None):
        return self._items(f"{API}/promotions", state=state)

    def get(self, promotion_id):
        return self._get(f"{API}/promotions/{_q(_id(promotion_id))}")

    def approve(self, promotion_id, reason=None, idempotency_key=None):
        return self._t.json("POST", f"{API}/promotions/{_q(_id(promotion_id))}/approve",
                            json_body=_clean(dict(reason=reason)),
                            idempotency_key=idempotency_key)

    def reject(self, promotion_id, reason, idempotency_key=None):
        return self._t.json("POST", f"{API}/promotions/{_q(_id(promotion_id))}/reject",
                            json_body={"reason": reason}, idempotency_key=idempotency_key)

    def wait(self, promotion_id, until=SETTLED, timeout=600.0):
        """Polls until the promotion settles (gates evaluated, deployed or refused)."""
        pid = _id(promotion_id)
        return poll(lambda: self.get(pid), lambda p: p["state"] in until, timeout,
                    what=f"promotion {pid}")


class Stores(_Namespace):
    """GloboJava's stores and their managers."""

    def list(self, country=None, limit=None):
        return self._pager(f"{API}/stores", limit, country=country)

    def get(self, store):
        return self._get(f"{API}/stores/{_q(store)}")

    def create(self, id, name, country, city, timezone, idempotency_key=None):
        return self._t.json("POST", f"{API}/stores",
                            json_body=dict(id=id, name=name, country=country, city=city,
                                           timezone=timezone),
                            idempotency_key=idempotency_key)

    def update(self, store, etag=None, **changes):
        return self._t.json("PATCH", f"{API}/stores/{_q(store)}", json_body=changes,
                            headers=_if_match(etag))

    def managers(self, store):
        return self._items(f"{API}/stores/{_q(store)}/managers")

    def assign_manager(self, store, oid, name=None):
        return self._t.json("PUT", f"{API}/stores/{_q(store)}/managers/{_q(oid)}",
                            json_body=_clean(dict(name=name)) if name else None)

    def unassign_manager(self, store, oid):
        return self._t.json("DELETE", f"{API}/stores/{_q(store)}/managers/{_q(oid)}")


class DevAuth(_Namespace):
    """The local dev issuer (servers run with ROASTERY_AUTH=dev only)."""

    def token(self, user, roles, ttl_seconds=None):
        """Mints a token string for user with roles (a list or comma-separated string)."""
        if isinstance(roles, str):
            roles = [r.strip() for r in roles.split(",") if r.strip()]
        tok = self._t.json("POST", "/auth/dev/token", auth=False,
                           json_body=_clean(dict(user=user, roles=list(roles),
                                                 ttl_seconds=ttl_seconds)))
        return tok["access_token"]

    def jwks(self):
        return self._t.json("GET", "/auth/dev/jwks.json", auth=False)


class Client:
    """A Roastery API client (standard library only).

    base_url: e.g. "http://127.0.0.1:8080". token: a bearer token; or
    token_provider: a callable called before every request that returns a
    token (a string or an azure-identity AccessToken). Writes carry an
    Idempotency-Key (reused by the retries of the same call); 429 and 503
    answers are retried up to max_retries times, waiting Retry-After (a wait
    longer than max_retry_wait seconds is not attempted).
    """

    def __init__(self, base_url, token=None, token_provider=None, timeout=30.0,
                 max_retries=5, max_retry_wait=60.0, backoff=0.5, user_agent=None):
        self._transport = Transport(base_url, token=token, token_provider=token_provider,
                                    timeout=timeout, max_retries=max_retries,
                                    max_retry_wait=max_retry_wait, backoff=backoff,
                                    user_agent=user_agent)
        self.operations = Operations(self)
        self.users = Identity(self)
        self.audit = Audit(self)
        self.projects = Projects(self)
        self.datasets = Datasets(self)
        self.compute = Compute(self)
        self.prices = Prices(self)
        self.runs = Runs(self)
        self.models = Models(self)
        self.promotions = Promotions(self)
        self.stores = Stores(self)
        self.dev = DevAuth(self)

    @classmethod
    def from_env(cls, **kw):
        """From ROASTERY_URL (default http://127.0.0.1:8080) and ROASTERY_TOKEN."""
        return cls(os.environ.get("ROASTERY_URL", "http://127.0.0.1:8080"),
                   token=os.environ.get("ROASTERY_TOKEN"), **kw)

    @classmethod
    def from_azure_credential(cls, base_url, credential, scope="api://roastery/.default", **kw):
        """Tokens from an azure-identity credential, renewed 5 minutes before expiry."""
        cache = {}

        def provider():
            tok = cache.get("t")
            if tok is None or tok.expires_on - 300 < time.time():
                tok = cache["t"] = credential.get_token(scope)
            return tok.token
        return cls(base_url, token_provider=provider, **kw)

    @property
    def base_url(self):
        return self._transport.base_url

    def request(self, method, path, query=None, json=None, headers=None,
                idempotency_key=None):
        """Any API call by path (e.g. "/api/v1/me"); answers the parsed JSON."""
        return self._transport.json(method, path, query=query, json_body=json, headers=headers,
                                    idempotency_key=idempotency_key)

    def me(self):
        """Who the caller is: roles, projects, stores."""
        return self._transport.json("GET", f"{API}/me")

    def health(self):
        return self._transport.json("GET", "/healthz", auth=False)

    def ready(self):
        return self._transport.json("GET", "/readyz", auth=False, retries=0)

    def openapi(self):
        """The API contract the server was built with (YAML text)."""
        _, _, data = self._transport.send("GET", "/openapi.yaml", auth=False)
        return data.decode()

    def prometheus_metrics(self):
        """Prometheus text. The server answers /metrics on its probe listener only
        (ROASTERY_PROBE_LISTEN, never behind the ingress): use a client made for that address."""
        _, _, data = self._transport.send("GET", "/metrics", auth=False)
        return data.decode()

    def _download(self, path, dest=None):
        _, _, resp = self._transport.send("GET", path, stream=True,
                                          timeout=max(self._transport.timeout, 600))
        with resp:
            if dest is None:
                return resp.read()
            if hasattr(dest, "write"):
                shutil.copyfileobj(resp, dest, 1 << 16)
                return dest
            tmp = os.fspath(dest) + ".part"
            with open(tmp, "wb") as f:
                shutil.copyfileobj(resp, f, 1 << 16)
            os.replace(tmp, dest)
            return dest
