"""Safe by default: loopback unless a token is given, the token on every request, read-only,
and downloads that cannot leave the artifact store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient

from autotune.cli.dashboard import is_loopback
from autotune.dashboard import create_app
from autotune.store.db import session_scope
from autotune.store.models import TrialRecord
from tests.dashboard.conftest import free_port

TOKEN = "s3cret-token-for-tests-0123"


def test_token_required_on_every_request(filled_db) -> None:
    client = TestClient(create_app(filled_db.url, filled_db.artifacts, token=TOKEN))
    for path in ("/", "/api/studies", "/studies/tiny", "/vendor/plotly.min.js", "/openapi.json"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "token" in response.json()["detail"]
    assert client.get("/api/studies", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/api/studies", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()[0]["name"] == "tiny"
    # A browser opens ?token=... once; the cookie carries it to the page's own requests.
    assert client.get("/", params={"token": TOKEN}).status_code == 200
    assert client.get("/api/studies").status_code == 200


def _dashboard(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "autotune", "dashboard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "AUTOTUNE_DASHBOARD_TOKEN"},
    )


def test_binding_beyond_loopback_needs_a_token(filled_db) -> None:
    refused = _dashboard("--storage", filled_db.url, "--host", "0.0.0.0")
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 1
    assert err.strip().startswith("error: --host 0.0.0.0 exposes the dashboard")
    assert len(err.strip().splitlines()) == 1
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")

    port = free_port()
    server = _dashboard("--storage", filled_db.url, "--host", "0.0.0.0", "--port", str(port),
                        "--token", TOKEN)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/studies"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=5)
                pytest.fail("served without a token")
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr
                time.sleep(0.5)
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_downloads_stay_inside_the_artifact_store(filled_db) -> None:
    client = TestClient(create_app(filled_db.url, filled_db.artifacts))
    number = client.get("/api/studies/tiny/trials", params={"status": "complete"}).json()[0][
        "number"
    ]
    assert client.get(f"/studies/tiny/trials/{number}/model.onnx").status_code == 200
    for path in (
        "/studies/tiny/trials/..%2F..%2F..%2Fetc%2Fpasswd/model.onnx",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2Fapp.py",
        "/vendor/..%2F..%2Fetc%2Fpasswd",
    ):
        response = client.get(path)
        assert response.status_code in (404, 422), path
        assert b"root:" not in response.content and b"create_app" not in response.content

    # Even a tampered database cannot point a download outside the store.
    with session_scope(filled_db.url) as session:
        row = TrialRecord.find(session, "tiny", number)
        original, row.artifact_id = row.artifact_id, "../../../../../../etc/passwd"
    try:
        response = client.get(f"/studies/tiny/trials/{number}/model.onnx")
        assert response.status_code == 403 and b"root:" not in response.content
    finally:
        with session_scope(filled_db.url) as session:
            TrialRecord.find(session, "tiny", number).artifact_id = original
