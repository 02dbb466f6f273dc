"""The JSON API against a database filled by a real study: it serves what autotune.api says."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import autotune
from autotune.dashboard import create_app


@pytest.fixture(scope="module")
def client(filled_db) -> TestClient:
    return TestClient(create_app(filled_db.url, filled_db.artifacts))


def test_studies(client: TestClient, filled_db) -> None:
    listed = client.get("/api/studies").json()
    expected = [s.to_json() for s in autotune.list_studies(filled_db.url)]
    assert [{k: v for k, v in s.items() if k != "running"} for s in listed] == expected
    assert listed[0]["running"] == 0 and listed[0]["complete"] > 0


def test_study_front_trials_and_trial(client: TestClient, filled_db) -> None:
    study = client.get("/api/studies/tiny").json()
    assert study["spec"]["name"] == "tiny"
    (hardware_id,) = study["hardware"]
    assert study["hardware"][hardware_id]["id"] == hardware_id

    front = client.get("/api/studies/tiny/front").json()
    view = autotune.pareto_front("tiny", filled_db.url)
    assert [m["number"] for m in front["members"]] == [m.number for m in view.members]
    assert front["baselines"]["ort_fp32_ms"] > 0 and front["history"]

    trials = client.get("/api/studies/tiny/trials").json()
    assert [t["number"] for t in trials] == [
        t.number for t in autotune.api.study_trials("tiny", filled_db.url)
    ]
    complete = client.get("/api/studies/tiny/trials", params={"status": "complete"}).json()
    assert complete and all(t["status"] == "complete" for t in complete)

    number = complete[0]["number"]
    detail = client.get(f"/api/studies/tiny/trials/{number}").json()
    assert detail["config"] == complete[0]["config"] and detail["train_curve"]
    assert detail["worker"] and detail["params"]


def test_best_under_constraints_over_http(client: TestClient, filled_db) -> None:
    answer = client.get("/api/studies/tiny/best", params={"min_accuracy": 0.5}).json()
    expected = autotune.best_config(
        "tiny", min_accuracy=0.5, storage=filled_db.url, artifacts=filled_db.artifacts
    )
    assert answer["trial"] == expected.trial.number
    assert answer["config"] == expected.config.to_dict()
    model = client.get(answer["model_url"])
    assert model.status_code == 200
    assert model.content == expected.artifact_path.read_bytes()

    impossible = client.get("/api/studies/tiny/best", params={"max_latency_ms": 0.0001})
    assert impossible.status_code == 404 and "closest" in impossible.json()["detail"]
    bad = client.get("/api/studies/tiny/best", params={"min_accuracy": 3})
    assert bad.status_code == 422


def test_errors_and_read_only(client: TestClient) -> None:
    missing = client.get("/api/studies/nope")
    assert missing.status_code == 404 and "no study named 'nope'" in missing.json()["detail"]
    assert client.get("/api/studies/tiny/trials/999").status_code == 404
    assert client.get("/api/studies/tiny/front", params={"hardware": "x"}).status_code == 404
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/api/studies/tiny").status_code == 405


def test_openapi_documents_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in (
        "/api/studies",
        "/api/studies/{name}/front",
        "/api/studies/{name}/trials",
        "/api/studies/{name}/best",
    ):
        assert path in schema["paths"], path
    assert client.get("/docs").status_code == 404  # its assets would come from a CDN


def test_importance(client: TestClient) -> None:
    importance = client.get("/api/studies/tiny/importance").json()
    assert set(importance) == {"accuracy", "latency_ms"}
    assert "layers" in importance["latency_ms"]
