"""``create_app(storage)``: the read-only web dashboard and its JSON API.

Everything is read through :mod:`autotune.api`, like the CLI. Pages are server-side Jinja2
templates (autoescaped) that fetch their data from ``/api/...``; Plotly's JavaScript is served
from the installed ``plotly`` package, so nothing is loaded from the network.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from autotune import api
from autotune.errors import (
    AmbiguousHardwareError,
    ArtifactOutsideStoreError,
    AutotuneError,
    ConfigError,
    NotFoundError,
    StorageError,
)

HERE = Path(__file__).resolve().parent
TOKEN_COOKIE = "autotune_token"
# The first matching type decides: subclasses before their bases.
STATUS: tuple[tuple[type[AutotuneError], int], ...] = (
    (NotFoundError, 404),
    (ArtifactOutsideStoreError, 403),
    (AmbiguousHardwareError, 409),  # the client must say which machine (?hardware=)
    (ConfigError, 400),
    (StorageError, 503),
)


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def create_app(
    storage: str | None = None, artifacts: str | Path | None = None, token: str | None = None
) -> FastAPI:
    """The dashboard for one database. With ``token``, every request must carry it (header
    ``Authorization: Bearer …``, or ``?token=…`` once, which sets a cookie)."""
    # A database at another schema stops here, saying what to run.
    settings = api.open_results(storage, artifacts=artifacts)
    app = FastAPI(
        title="autotune",
        summary="Studies, Pareto fronts and trials of an autotune result database (read-only).",
        # Swagger UI and ReDoc load their assets from a CDN; the schema itself is served.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["metric"] = format_metric
    if token:
        _require_token(app, token)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(AutotuneError)
    async def autotune_error(request: Request, exc: AutotuneError) -> Response:
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 500)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    _pages(app, templates)
    _api_routes(app)
    return app


def _require_token(app: FastAPI, token: str) -> None:
    @app.middleware("http")
    async def check(request: Request, call_next: Any) -> Response:
        header = request.headers.get("authorization", "")
        given = (
            header.removeprefix("Bearer ").strip()
            or request.query_params.get("token")
            or request.cookies.get(TOKEN_COOKIE)
            or ""
        )
        if not secrets.compare_digest(given.encode(), token.encode()):
            return JSONResponse(
                {"detail": "missing or wrong token (Authorization: Bearer <token>)"},
                status_code=401,
            )
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response


def _pages(app: FastAPI, templates: Jinja2Templates) -> None:
    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def studies_page(request: Request) -> HTMLResponse:
        return page(request, "studies.html")

    @app.get("/studies/{name}", response_class=HTMLResponse, include_in_schema=False)
    def study_page(request: Request, name: str, hardware: str | None = None) -> HTMLResponse:
        api.check_study(name, app.state.settings)  # 404 for an unknown study
        return page(request, "study.html", study=name, hardware=hardware)

    @app.get(
        "/studies/{name}/trials/{number}", response_class=HTMLResponse, include_in_schema=False
    )
    def trial_page(request: Request, name: str, number: int) -> HTMLResponse:
        detail = api.trial_detail(name, number, app.state.settings)
        return page(
            request,
            "trial.html",
            study=name,
            trial=detail.to_json(),
            storage=api.storage_label(app.state.settings),
        )

    @app.get("/compare", response_class=HTMLResponse, include_in_schema=False)
    def compare_page(request: Request, a: str, b: str) -> HTMLResponse:
        return page(request, "compare.html", a=a, b=b)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    @app.get("/studies/{name}/trials/{number}/model.onnx", include_in_schema=False)
    def download(name: str, number: int) -> FileResponse:
        path = api.artifact_file(name, number, app.state.settings)
        return FileResponse(path, filename=f"{name}-trial-{number}.onnx")


def _api_routes(app: FastAPI) -> None:
    def settings() -> api.Settings:
        return app.state.settings

    @app.get("/api/studies", tags=["studies"])
    def studies() -> list[dict[str, Any]]:
        """Every study: dataset, teacher, trials complete/failed/stopped/running, front size,
        best speedup at the accuracy constraint, last update."""
        return [
            {**s.to_json(), "running": api.running_trials(s.name, settings())}
            for s in api.list_studies(settings())
        ]

    @app.get("/api/studies/{name}", tags=["studies"])
    def study(name: str) -> dict[str, Any]:
        """One study: its overview, spec, running trials and the machines that measured it."""
        return api.study_info(name, settings()).to_json()

    @app.get("/api/studies/{name}/front", tags=["fronts"])
    def front(name: str, hardware: str | None = None) -> dict[str, Any]:
        """The latest Pareto front on one machine, with teacher baselines and its history
        (one entry per front version: trials seen, hypervolume, members)."""
        return api.pareto_front(name, settings(), hardware).to_json()

    @app.get("/api/studies/{name}/trials", tags=["trials"], response_class=JSONResponse)
    def trials(name: str, status: str | None = None, hardware: str | None = None) -> Response:
        """Every measured trial (optionally one status: complete, stopped, failed); with
        ``hardware``, that machine's results: its own trials and those it re-measured."""
        listed = (
            api.study_trials(name, settings())
            if hardware is None
            else api.machine_trials(name, hardware, settings())
        )
        # Plain JSON types already: skip FastAPI's per-item encoding pass (10,000 trials).
        return JSONResponse([t.to_json() for t in listed if status is None or t.status == status])

    @app.get("/api/studies/{name}/trials/{number}", tags=["trials"])
    def trial(name: str, number: int) -> dict[str, Any]:
        """One trial: configuration, all metrics, training curve, failure reason, worker."""
        return api.trial_detail(name, number, settings()).to_json()

    @app.get("/api/studies/{name}/best", tags=["fronts"])
    def best(
        name: str,
        max_latency_ms: float | None = Query(None, ge=0),
        min_accuracy: float | None = Query(None, ge=0, le=1),
        max_size_mb: float | None = Query(None, ge=0),
        prefer: str = Query("accuracy", pattern="^(accuracy|latency)$"),
        hardware: str | None = None,
    ) -> dict[str, Any]:
        """The best trial under constraints, as ``autotune best --json`` prints it, plus the
        URL of its model."""
        chosen = api.best_config(
            name,
            max_latency_ms,
            min_accuracy,
            max_size_mb,
            prefer,
            settings(),
            hardware,
        )
        data = chosen.to_json()
        data["artifact_path"] = None  # a server path means nothing to an HTTP client
        data["model_url"] = f"/studies/{name}/trials/{chosen.trial.number}/model.onnx"
        return data

    @app.get("/api/studies/{name}/importance", tags=["studies"])
    def importance(name: str) -> dict[str, dict[str, float]]:
        """Optuna's parameter importance for each objective."""
        return api.param_importance(name, settings())


def format_metric(value: Any, key: str) -> str:
    """A stored metric as people read it: units, sensible digits, stage times as a list."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {format_metric(v, '_s')}" for k, v in value.items())
    if not isinstance(value, int | float):
        return str(value)
    if key.endswith("_ms"):
        return f"{value:.2f} ms"
    if key.startswith("speedup"):
        return f"{value:.2f}x"
    if key.endswith("_mb"):
        return f"{value:,.1f} MB"
    if key.endswith("_s") or key.endswith("seconds_saved"):
        return f"{value:,.1f} s"
    if key == "sparsity":
        return f"{value:.1%}"
    if key == "parameters":
        return f"{value:,}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
