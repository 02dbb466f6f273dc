"""``autotune dashboard``: serve the read-only web dashboard of a result database."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from autotune.cli.options import Artifacts, Storage
from autotune.cli.output import console
from autotune.errors import ConfigError

TOKEN_ENV = "AUTOTUNE_DASHBOARD_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dashboard(
    storage: Storage = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8080,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=TOKEN_ENV,
            help="Required on every request; mandatory when binding beyond loopback.",
        ),
    ] = None,
    artifacts: Artifacts = None,
) -> None:
    """Serve the read-only web dashboard and its JSON API (/api/..., /openapi.json)."""
    import uvicorn

    from autotune.dashboard import create_app

    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--host {host} exposes the dashboard beyond this machine; "
            f"give --token (or {TOKEN_ENV}) so that every request must carry it"
        )
    if token is not None and len(token) < 16:
        raise ConfigError("--token must be at least 16 characters")
    app = create_app(storage, artifacts, token)
    shown = "[::1]" if host == "::1" else host
    console.print(f"autotune dashboard on http://{shown}:{port}/  (Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
