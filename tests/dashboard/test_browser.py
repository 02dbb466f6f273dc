"""The dashboard in a real browser: Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import autotune
from autotune.dashboard import create_app
from autotune.store.db import session_scope
from autotune.store.models import StudyRecord, TrialRecord

CHROMIUM = os.environ.get("AUTOTUNE_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = pytest.mark.skipif(
    not shutil.which(CHROMIUM) and not os.environ.get("CI"),
    reason=f"no chromium at {CHROMIUM} (apt install chromium); CI installs it",
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def _front_points(page) -> dict[str, int]:
    """Points of the front traces: in Plotly's data, and drawn as SVG paths."""
    return page.evaluate(
        """() => {
          const gd = document.getElementById('front-plot');
          let data = 0, drawn = 0;
          gd._fullData.forEach((trace) => {
            if (trace.meta !== 'front') return;
            data += trace.x.length;
            drawn += gd.querySelectorAll(`.trace${trace.uid} .point`).length;
          });
          return {data, drawn};
        }"""
    )


def test_studies_study_click_trial_screenshot(browser, serve, filled_db) -> None:
    base = serve(create_app(filled_db.url, filled_db.artifacts))
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    external: list[str] = []
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith(base) or r.url.startswith("data:") else external.append(r.url)
        ),
    )

    page.goto(base + "/")
    page.get_by_role("link", name="tiny").click()
    page.wait_for_url(f"{base}/studies/tiny")
    page.wait_for_selector("#front-plot .scatterlayer .point")
    page.wait_for_selector("#trials tbody tr")

    front = autotune.pareto_front("tiny", filled_db.url)
    assert _front_points(page) == {"data": len(front.members), "drawn": len(front.members)}
    rows = page.locator("#trials tbody tr").count()
    assert rows == len(autotune.api.study_trials("tiny", filled_db.url))

    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(500)  # let the hypervolume and importance plots finish drawing
    page.screenshot(path=str(ARTIFACTS / "dashboard-study.png"), full_page=True)

    # Click a front point: Plotly's click event takes us to its trial page.
    number = front.members[0].number
    uid = page.evaluate(
        "() => document.getElementById('front-plot')._fullData.find(t => t.meta === 'front').uid"
    )
    points = page.locator(f"#front-plot .trace{uid} .point")
    numbers = page.evaluate(
        "() => document.getElementById('front-plot')._fullData"
        ".find(t => t.meta === 'front').customdata"
    )
    box = points.nth(numbers.index(number)).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(f"{base}/studies/tiny/trials/{number}")
    assert page.locator("h1").inner_text().startswith(f"Trial {number}")
    assert page.locator("#download").get_attribute("href").endswith("/model.onnx")
    assert "autotune export tiny --trial" in page.locator("#snippet-cli").inner_text()

    assert not errors, errors
    assert not external, f"assets from outside the server: {external}"


def test_user_strings_are_escaped(browser, serve, filled_db, tmp_path) -> None:
    """Names and reasons holding markup show as text and never run."""
    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    with session_scope(filled_db.url) as session:
        source = StudyRecord.find(session, "tiny")
        session.add(StudyRecord(study_name=hostile, spec=source.spec, spec_hash="x"))
        failed = next(r for r in TrialRecord.for_study(session, "tiny"))
        original = failed.reason
        failed.reason = hostile
    try:
        base = serve(create_app(filled_db.url, filled_db.artifacts))
        page = browser.new_page()
        for path in ("/", "/studies/tiny", f"/studies/tiny/trials/{failed.trial_number}"):
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("() => window.pwned") is None, path
        page.goto(base + "/")
        page.wait_for_selector("#studies tbody tr >> nth=1")
        assert hostile in page.locator("#studies").inner_text()
    finally:
        with session_scope(filled_db.url) as session:
            session.delete(StudyRecord.find(session, hostile))
            TrialRecord.find(session, "tiny", failed.trial_number).reason = original


def test_plots_explain_themselves(browser, serve, filled_db) -> None:
    """Depth has a legend, trial axes count whole trials, titles sit clear of the toolbar,
    importance says when it has too few trials, a trial's metrics carry units, and a short
    run's loss curve is drawn with markers."""
    base = serve(create_app(filled_db.url, filled_db.artifacts))
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/studies/tiny")
    page.wait_for_selector("#front-plot .scatterlayer .point")
    page.wait_for_selector("#importance-plot .gtitle")

    legend = page.evaluate(
        "() => document.getElementById('front-plot')._fullData"
        ".filter(t => t.meta === 'legend').map(t => t.name)"
    )
    depths = {m.compression.layers for m in autotune.pareto_front("tiny", filled_db.url).members}
    assert legend == [f"{d} layer{'s' if d > 1 else ''}" for d in sorted(depths)]
    ticks = page.eval_on_selector_all(
        "#hypervolume-plot .xtick text", "els => els.map(e => e.textContent)"
    )
    assert ticks and all(t.replace(",", "").isdigit() for t in ticks), ticks
    for plot in ("front-plot", "hypervolume-plot", "importance-plot"):
        title = page.locator(f"#{plot} .gtitle").bounding_box()
        bar = page.locator(f"#{plot} .modebar").bounding_box()
        if bar is not None:  # the toolbar shows on hover; its box is known either way
            assert title["x"] + title["width"] < bar["x"], plot
    assert "too few to trust" in (page.locator("#importance-plot .gtitle").text_content() or "")

    complete = [
        t for t in autotune.api.study_trials("tiny", filled_db.url) if t.status == "complete"
    ]
    page.goto(f"{base}/studies/tiny/trials/{complete[0].number}")
    page.wait_for_selector("#curve-plot .scatterlayer .point")
    metrics = dict(
        zip(
            page.locator("#metrics th").all_inner_texts(),
            page.locator("#metrics td").all_inner_texts(),
            strict=True,
        )
    )
    assert metrics["latency_ms"].endswith(" ms") and metrics["size_mb"].endswith(" MB")
    assert metrics["speedup_vs_teacher_pytorch"].endswith("x")
    assert metrics["stage_seconds"].startswith("build ") and "{" not in metrics["stage_seconds"]
    assert len(metrics["accuracy"].split(".")[1]) == 4
    points = page.locator("#curve-plot .scatterlayer .point").count()
    assert points == len(complete[0].metrics["train_curve"]) >= 2
    assert not errors, errors


def test_one_study_on_two_machines(browser, serve, filled_db, tmp_path, monkeypatch) -> None:
    """A study re-measured on a second machine: its own front on the study page, and both
    fronts on one plot, each labelled with its machine."""
    url = f"sqlite:///{tmp_path / 'two.db'}"
    shutil.copyfile(filled_db.url.removeprefix("sqlite:///"), tmp_path / "two.db")
    [first] = autotune.api.hardware_info("tiny", url)
    monkeypatch.setenv("AUTOTUNE_HARDWARE_LABEL", "deploy-box")
    report = autotune.api.remeasure("tiny", scope="all", storage=url, artifacts=filled_db.artifacts)
    monkeypatch.delenv("AUTOTUNE_HARDWARE_LABEL")
    second = report.hardware_id
    assert report.measured and second != first

    base = serve(create_app(url, filled_db.artifacts))
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/studies/tiny?hardware={second}")
    page.wait_for_selector("#front-plot .scatterlayer .point")
    front = autotune.pareto_front("tiny", url, hardware=second)
    assert _front_points(page) == {"data": len(front.members), "drawn": len(front.members)}
    hover = page.evaluate(
        "() => document.getElementById('front-plot')._fullData"
        ".find(t => t.meta === 'front').text[0]"
    )
    assert f"re-measured here; trained on {first}" in hover

    page.get_by_role("link", name="compare its fronts on every machine").click()
    page.wait_for_url(f"{base}/compare?a=tiny&b=tiny")
    page.wait_for_selector("#compare-plot .scatterlayer .point")
    names = page.evaluate(
        "() => document.getElementById('compare-plot')._fullData.map(t => t.name)"
    )
    assert len(names) == 2 and {first, second} == {n.split(" on ")[1].split(" ")[0] for n in names}
    assert "2 different hardware fingerprints" in page.locator("#machines").inner_text()
    assert not errors, errors


def test_a_multi_fidelity_study_shows_lower_rungs_as_context(
    browser, serve, tmp_path, tiny_teacher, tiny_data
) -> None:
    """Two configurations at rung 0, the better promoted to the top: the page names the
    rungs and the saving, greys the lower rung's rows, draws them faint, off the front."""
    from tests.helpers import spec_text

    spec = tmp_path / "mf.toml"
    spec.write_text(
        spec_text(
            tiny_data,
            tiny_teacher,
            training="epochs = 2\nbatch_size = 16\nlearning_rate = 0.001",
            search='sampler = "random"\nn_trials = 2\nfidelity = { min_examples = 96, eta = 2 }',
        )
    )
    url = f"sqlite:///{tmp_path / 'mf.db'}"
    autotune.run_study(spec, url, artifacts=tmp_path / "a")
    base = serve(create_app(url, tmp_path / "a"))
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/studies/tiny")
    page.wait_for_selector("#front-plot .scatterlayer .point")
    line = page.locator("#fidelity").inner_text()
    assert "trials per rung: rung 0: 2, rung 1: 1" in line and "(25% saved)" in line
    assert page.locator("#trials tr.lower-rung").count() == 2
    assert "stopped at rung 0" in page.locator("#trials tr.lower-rung").first.inner_text()
    faint = page.evaluate(
        "() => document.getElementById('front-plot')._fullData"
        ".filter(t => t.meta === 'rung').map(t => t.x.length)"
    )
    assert faint == [2] and _front_points(page) == {"data": 1, "drawn": 1}
    assert not errors, errors
