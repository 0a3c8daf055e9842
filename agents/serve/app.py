"""The ranking API (FastAPI): ``POST /rank``, ``POST /feedback``, ``GET /healthz``, ``GET /metrics``
(Prometheus text format) and the OpenAPI docs at ``/docs``.

Every bad request is answered 422 (or 413 for a body over the limit) with FastAPI's error shape,
``{"detail": [{"loc": [...], "msg": ...}]}``, naming the field at fault; an unknown event is 404
and a repeated report 409. The ranker runs on the event loop's thread (one request at a time,
no locks around its state); parts of the log are written on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from agents.serve.logbook import Logbook
from agents.serve.ranker import MAX_TEMPERATURE, MIN_TEMPERATURE, Ranker, RequestError
from agents.serve.service import Service
from envs.config import MAX_HISTORY

Id = StrictInt | StrictStr
"""A user or item id as the logs spell it (integer ids may also come as their decimal text)."""
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
"""Upper bounds (seconds) of the latency histogram's buckets."""


class RankRequest(BaseModel):
    """A ranking request."""

    model_config = ConfigDict(extra="forbid")
    user_id: Id = Field(description="The user, by the id of the logs the policy trained on.")
    history: Annotated[list[Id], Field(max_length=MAX_HISTORY)] | None = Field(
        None,
        description="Clicked item ids, oldest first; default: the session's (the logged history plus its clicks).",
    )
    candidates: Annotated[list[Id], Field(min_length=1, max_length=10_000)] | None = Field(
        None,
        description="Item ids to rank (at most the policy's N; a distilled run's: exactly N); default: the candidate generator's.",
    )
    slate_size: StrictInt | None = Field(None, description="Items to show; default: the policy's K.")
    temperature: float = Field(
        0.0, ge=0.0, le=MAX_TEMPERATURE, allow_inf_nan=False,
        description=f"0: the greedy slate (propensity 1); from {MIN_TEMPERATURE:g}: a Plackett-Luce draw of "
        "softmax(z / T), z the policy's scores standardised over the candidates.",
    )  # fmt: skip
    session_id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None,
        description="Names the session so its state (step, clicks, topics shown) carries to its next request.",
    )


class RankResponse(BaseModel):
    """What was shown and how likely it was."""

    event_id: str
    slate: list[Id]
    scores: list[float]
    propensity: float = Field(description="Probability of the whole slate.")
    slot_propensities: list[float] = Field(
        description="Probability of each slot's item given the slots above."
    )
    policy_version: str


class FeedbackRequest(BaseModel):
    """What the user did with a shown slate."""

    model_config = ConfigDict(extra="forbid")
    event_id: Annotated[str, Field(min_length=1, max_length=200)]
    clicks: list[Annotated[int, Field(ge=0, le=1, strict=True)]] = Field(
        description="0/1 per slot, top first."
    )
    purchases: list[Annotated[int, Field(ge=0, le=1, strict=True)]] | None = Field(
        None, description="0/1 per slot (a purchase is also a click); default: none."
    )


@dataclass(frozen=True)
class Limits:
    """Request limits and the log's timing."""

    max_body_bytes: int = 65_536
    flush_interval_s: float = 1.0
    feedback_timeout_s: float = 300.0


def _error(status: int, loc: tuple[Any, ...], message: str) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": list(loc), "msg": message, "type": "value_error"}]}, status_code=status
    )


class Guard:
    """ASGI middleware: the body size limit (413) and the request metrics, around every request."""

    def __init__(self, app: Any, limit: int, metrics: Metrics):
        self.app, self.limit, self.metrics = app, limit, metrics

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]], send: Any
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, path = time.perf_counter(), scope["path"]
        endpoint = path if path in ("/rank", "/feedback", "/healthz", "/metrics") else "other"
        status = {"code": 500}

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        body, more = b"", True
        while more:  # read the whole body first, so an oversize one is refused before any work
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _error(413, ("body",), f"request body over {self.limit} bytes")(scope, receive, sending)
                self.metrics.observe(endpoint, 413, time.perf_counter() - start)
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            await self.app(scope, replay, sending)
        finally:
            self.metrics.observe(endpoint, status["code"], time.perf_counter() - start)


class Metrics:
    """The Prometheus series of one server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recgym_requests",
            "Requests answered, by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "recgym_request_errors",
            "Requests answered with a status >= 400",
            ["endpoint"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recgym_request_seconds", "Time to answer a request", ["endpoint"], buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.pending = Gauge(
            "recgym_pending_events", "Shown slates waiting for feedback", registry=self.registry
        )
        self.rows = Gauge("recgym_logged_rows", "Rows written to the log since start", registry=self.registry)
        self.flush_errors = Counter(
            "recgym_log_write_errors", "Failed writes of the serving log (retried)", registry=self.registry
        )
        self.protected = Gauge(
            "recgym_protected_exposure_share",
            "Protected providers' share of the exposure shown",
            registry=self.registry,
        )

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint).inc()


def create_app(ranker: Ranker, logbook: Logbook, limits: Limits = Limits()) -> FastAPI:
    """The API over ``ranker``, logging to ``logbook`` (closed, with everything flushed, at shutdown)."""
    service = Service(ranker, logbook)
    metrics = Metrics()

    async def flusher() -> None:
        while True:
            await asyncio.sleep(limits.flush_interval_s)
            try:
                logbook.expire()
                metrics.pending.set(len(logbook.pending))
                if logbook.ready_rows:
                    await asyncio.to_thread(logbook.flush)
            except OSError as err:  # disk full, permissions: the rows wait, the server keeps answering
                metrics.flush_errors.inc()
                print(f"warning: the serving log could not be written ({err}); retrying", file=sys.stderr)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(flusher())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            logbook.close()

    app = FastAPI(
        title="RecGym ranking API", version=ranker.version, lifespan=lifespan,
        description="A trained RecGym policy: rank, report feedback; every shown slate is logged with its propensities.",
    )  # fmt: skip

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        return _error(422, ("body", *err.field_path), str(err))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        detail = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in err.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.post("/rank", response_model=RankResponse)
    async def rank(request: RankRequest) -> dict[str, Any]:
        """Rank for one user; the slate is logged with its propensities until its feedback comes."""
        answer = service.rank(
            request.user_id, request.history, request.candidates, request.slate_size, request.temperature,
            request.session_id,
        )  # fmt: skip
        metrics.pending.set(len(logbook.pending))
        return answer

    @app.post("/feedback", status_code=204, responses={404: {}, 409: {}, 422: {}})
    async def feedback(request: FeedbackRequest) -> Response:
        """Clicks and purchases of a shown slate (once per event)."""
        refused = service.feedback(request.event_id, request.clicks, request.purchases)
        if refused is not None:
            return _error(refused.status, ("body", *refused.loc), refused.message)
        metrics.pending.set(len(logbook.pending))
        if logbook.due():
            try:
                await asyncio.to_thread(logbook.flush)
            except OSError:  # the feedback is taken; its rows wait for the next write
                metrics.flush_errors.inc()
        return Response(status_code=204)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness and what is served."""
        return {
            "status": "ok", "policy_version": ranker.version, "backend": ranker.backend,
            "requests": service.answered, "pending": len(logbook.pending), "rows_written": logbook.rows_written,
        }  # fmt: skip

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Requests, latency histogram, errors, the log and the exposure share, in Prometheus text format."""
        metrics.rows.set(logbook.rows_written)
        metrics.protected.set(float(ranker.ledger.shares()[1]))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(Guard, limit=limits.max_body_bytes, metrics=metrics)
    return app
