"""A minimal stateful Qdrant server on an httpx mock transport, validating every request body
against Qdrant's official OpenAPI schema, and able to fail the ways a real server does."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

# Qdrant's official OpenAPI schema, a copy of ../shared/qdrant-openapi.json kept here so the
# wire tests run on any clone
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "qdrant-openapi.json"


def schema() -> dict[str, Any]:
    """The server's OpenAPI schema, which every request body is validated against."""
    return dict(json.loads(SCHEMA_FILE.read_text()))


class FakeServer:
    """Just enough of Qdrant's REST API for collection creation, upsert and query."""

    def __init__(self, api: dict[str, Any] | None = None) -> None:
        self.schema = api if api is not None else schema()
        self.collections: dict[str, dict[str, Any]] = {}
        self.points: dict[str, dict[Any, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.faults: list[list[Any]] = []  # [pattern, response or exception, times left]

    def fail(self, pattern: str, answer: httpx.Response | Exception | Callable[[], Any],
             times: int = 1, applied: bool = False) -> None:
        """Answer the next ``times`` requests whose "METHOD /path" matches ``pattern`` with
        ``answer`` (a response, or an exception the transport raises); with ``applied`` the
        request is carried out first, as a cluster does before its answer times out."""
        self.faults.append([re.compile(pattern), answer, times, applied])

    def _fault(self, method: str, path: str, request: httpx.Request) -> httpx.Response | None:
        for fault in self.faults:
            if fault[2] > 0 and fault[0].search(f"{method} {path}"):
                fault[2] -= 1
                answer = fault[1]() if callable(fault[1]) else fault[1]
                if answer is not None and fault[3]:
                    self._answer(request)
                if isinstance(answer, Exception):
                    raise answer
                return answer
        return None

    def request_schema(self, method: str, path: str) -> dict[str, Any] | None:
        for template, ops in self.schema["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in ops:
                body = ops[method.lower()].get("requestBody")
                return body["content"]["application/json"]["schema"] if body else None
        raise AssertionError(f"{method} {path} is not in Qdrant's API")

    def validate(self, method: str, path: str, body: Any) -> None:
        from openapi_schema_validator import OAS30Validator

        schema = self.request_schema(method, path)
        if schema is not None:
            OAS30Validator({**schema, "components": self.schema["components"]}).validate(body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path, method = request.url.path, request.method
        self.validate(method, path, body)
        self.requests.append((method, path, body))
        faulted = self._fault(method, path, request)
        if faulted is not None:
            return faulted
        return self._answer(request)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path, method = request.url.path, request.method
        name = path.split("/")[2] if path.count("/") >= 2 else ""
        if method == "GET" and path == "/collections":
            return ok({"collections": [{"name": n} for n in self.collections]})
        if method == "DELETE" and path == f"/collections/{name}":
            self.collections.pop(name, None)
            self.points.pop(name, None)
            return ok(True)
        if path.endswith("/exists"):
            return ok({"exists": name in self.collections})
        if method == "PUT" and path == f"/collections/{name}":
            self.collections[name] = json.loads(json.dumps(body))  # requests keep what was sent
            return ok(True)
        if method == "PATCH" and path == f"/collections/{name}":
            self.collections[name].setdefault("optimizers_config", {}).update(
                body.get("optimizers_config") or {})
            return ok(True)
        if method == "GET" and path == f"/collections/{name}":
            created = self.collections[name]
            return ok({
                "status": "green", "optimizer_status": "ok", "segments_count": 1,
                "payload_schema": {},
                "config": {
                    "params": {"vectors": created.get("vectors", {}),
                               "sparse_vectors": created.get("sparse_vectors")},
                    "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
                    "optimizer_config": {"default_segment_number": 0, "flush_interval_sec": 5,
                                         **(created.get("optimizers_config") or {})},
                    "metadata": created.get("metadata"),
                },
            })
        if method == "PUT" and path.endswith("/points"):
            for point in body["points"]:
                self.points.setdefault(name, {})[point["id"]] = point
            return ok({"operation_id": 1, "status": "completed"})
        if method == "POST" and path.endswith("/points"):  # retrieve by ids
            stored = self.points.get(name, {})
            return ok([{"id": i, "payload": stored[i].get("payload")} for i in body["ids"] if i in stored])
        if method == "POST" and path.endswith("/points/count"):
            return ok({"count": len(self.points.get(name, {}))})
        if path.endswith("/points/query/batch"):
            stored = self.points.get(name, {})
            return ok([{"points": [
                {"id": i, "version": 1, "score": 0.5 + 0.1 * n}
                for i in named if i in stored]} if (named := _named(search)) is not None
                else self._nearest(name, search) for n, search in enumerate(body["searches"])])
        if path.endswith("/points/query"):
            return ok(self._nearest(name, body))
        raise AssertionError(f"unexpected request {method} {path}")

    def searches(self, name: str) -> list[dict[str, Any]]:
        """The probes of the last query asked of collection ``name`` (one batch request, a
        search per named vector; a batch scoring named hits is not a query)."""
        return next(b["searches"] for _, p, b in reversed(self.requests)
                    if p == f"/collections/{name}/points/query/batch"
                    and _named(b["searches"][0]) is None)

    def _nearest(self, name: str, query: dict[str, Any]) -> dict[str, Any]:
        """Any query's one answer, point 7, stored as a server would hold it, so a retrieve
        finds it too."""
        payload = {"text": "Mars", "_qinb_row": "doc01"}
        stored = self.points.setdefault(name, {}).setdefault(7, {"id": 7, "payload": payload})
        answer = {"id": 7, "version": 1, "score": 0.9}
        if query.get("with_payload"):
            answer["payload"] = stored.get("payload")
        return {"points": [answer]}


def _named(search: dict[str, Any]) -> list[Any] | None:
    """The ids a query's filter names (a probe scoring the hits), or None for a search."""
    for condition in (search.get("filter") or {}).get("must") or []:
        if "has_id" in condition:
            return list(condition["has_id"])
    return None


def ok(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"result": result, "status": "ok", "time": 0.0})


@contextlib.contextmanager
def serve_http(fake: FakeServer) -> Iterator[str]:
    """``fake`` over real HTTP on a free local port (its URL), for other processes (Dask
    workers) to reach; one request at a time."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            response = fake(httpx.Request(self.command, f"http://fake{self.path}", content=body))
            self.send_response(response.status_code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
