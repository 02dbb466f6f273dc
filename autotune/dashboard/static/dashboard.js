// autotune dashboard: pages fetch /api/... and draw with Plotly (served locally).
// User strings (study names, failure reasons) only ever reach the DOM as textContent, and are
// HTML-escaped before Plotly sees them in hover text.
"use strict";

const autotune = (() => {
  const POLL_MS = 5000;
  const FEW_TRIALS = 20;  // below this, parameter importance is mostly noise
  // Titles on the left, where Plotly's toolbar (top right) does not cover them.
  const TITLE_LEFT = { x: 0.01, xanchor: "left" };
  const PLOT_CONFIG = { responsive: true, displaylogo: false };
  const BIT_COLORS = { 32: "#2563eb", 8: "#16a34a", 4: "#d97706" };
  const DEPTH_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross", "x", "star",
    "hexagon", "pentagon", "triangle-down", "hourglass", "bowtie"];

  const esc = (s) => String(s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const enc = encodeURIComponent;

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.detail || `${response.status} ${response.statusText}`);
    }
    return response.json();
  }

  function cell(row, text, href) {
    const td = row.insertCell();
    if (href) {
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    return td;
  }

  const fmt = (v, digits) => (v === undefined || v === null ? "-" : Number(v).toFixed(digits));

  function label(c) {
    if (!c || c.layers === undefined) return "";
    const method = c.bits === 8 && c.int8_method ? `-${c.int8_method}` : "";
    const bits = c.bits === 32 ? "FP32" : `INT${c.bits}`;
    return `L${c.layers}-H${c.heads}-F${+c.ffn_fraction}-S${+c.sparsity}-${bits}${method}`;
  }

  function live(on) {
    const el = document.getElementById("live");
    if (el) el.textContent = on ? "● live" : "";
  }

  // --- studies page ------------------------------------------------------------------------

  async function studiesPage() {
    const body = document.querySelector("#studies tbody");
    const selects = [document.getElementById("compare-a"), document.getElementById("compare-b")];
    async function refresh() {
      const studies = await getJSON("/api/studies");
      body.replaceChildren();
      for (const s of studies) {
        const row = body.insertRow();
        cell(row, s.name, `/studies/${enc(s.name)}`);
        cell(row, s.dataset);
        cell(row, s.teacher.split("/").pop());
        for (const k of ["complete", "failed", "stopped", "running", "front_size"]) cell(row, s[k]);
        cell(row, s.best_speedup ? `${s.best_speedup.toFixed(1)}x` : "-");
        cell(row, (s.updated || "-").slice(0, 19));
      }
      for (const [i, select] of selects.entries()) {
        const kept = select.value;
        select.replaceChildren(...studies.map((s) => new Option(s.name, s.name)));
        select.value = kept || (studies[i] || studies[0] || {}).name || "";
      }
      const running = studies.some((s) => s.running > 0);
      live(running);
      setTimeout(refresh, POLL_MS);
    }
    document.getElementById("compare").addEventListener("submit", (event) => {
      event.preventDefault();
      location.href = `/compare?a=${enc(selects[0].value)}&b=${enc(selects[1].value)}`;
    });
    await refresh();
  }

  // --- study page --------------------------------------------------------------------------

  function violates(metrics, limits) {
    if (limits.min_accuracy != null && metrics.accuracy < limits.min_accuracy) return true;
    if (limits.max_latency_ms != null && metrics.latency_ms > limits.max_latency_ms) return true;
    if (limits.max_size_mb != null && metrics.size_mb > limits.max_size_mb) return true;
    return false;
  }

  function hover(t) {
    const m = t.metrics;
    return [`trial ${t.number}: ${esc(label(t.config))}`,
      `accuracy ${fmt(m.accuracy, 4)}`, `latency ${fmt(m.latency_ms, 2)} ms`,
      `speedup ${fmt(m.speedup_vs_teacher_pytorch, 1)}x vs PyTorch FP32`,
      `size ${fmt(m.size_mb, 1)} MB`, `T=${t.config.temperature} α=${fmt(t.config.alpha, 2)}`,
      ...(t.remeasured_from ? [`re-measured here; trained on ${esc(t.remeasured_from)}`] : []),
      ...(m.latency_reliable === false ? ["latency UNRELIABLE (machine busy)"] : []),
    ].join("<br>");
  }

  const AXIS_TITLES = {
    latency_ms: "latency (ms, batch 1, fixed length)",
    latency_data_mean_ms: "latency on validation sentences at their own lengths (mean ms)",
    latency_data_p90_ms: "latency on validation sentences at their own lengths (p90 ms)",
    speedup_vs_teacher_pytorch: "speedup vs teacher PyTorch FP32",
  };
  const FIGURE_AXES = { data_mean: "latency_data_mean_ms", data_p90: "latency_data_p90_ms" };

  function frontFigure(study, front, trials, limits, xKey) {
    const members = new Set(front.members.map((m) => m.number));
    const done = trials.filter((t) => t.status === "complete" && t.hardware_id === front.hardware_id);
    // Multi-fidelity studies: lower rungs are context, drawn faint; only the top rung answers.
    const lower = done.filter((t) => t.metrics.top_rung === false);
    const others = done.filter((t) => !members.has(t.number) && t.metrics.top_rung !== false);
    const point = (t) => t.metrics[xKey];
    const traces = [];
    if (lower.length) traces.push({
      name: "lower rungs (trained less)", type: lower.length > 2000 ? "scattergl" : "scatter",
      mode: "markers", meta: "rung", x: lower.map(point), y: lower.map((t) => t.metrics.accuracy),
      customdata: lower.map((t) => t.number),
      text: lower.map((t) => `stopped at rung ${t.metrics.rung}<br>${hover(t)}`), hoverinfo: "text",
      marker: { color: "rgba(190,190,190,0.35)", size: 6, symbol: "circle-open" },
    });
    traces.push({
      name: "dominated or infeasible", type: others.length > 2000 ? "scattergl" : "scatter",
      mode: "markers", meta: "other",
      x: others.map(point), y: others.map((t) => t.metrics.accuracy),
      customdata: others.map((t) => t.number), text: others.map(hover), hoverinfo: "text",
      marker: { color: "rgba(150,150,150,0.45)", size: 7,
        symbol: others.map((t) => (violates(t.metrics, limits) ? "x" : "circle")) },
    });
    const bits = [...new Set(front.members.map((m) => m.config.bits))].sort((a, b) => b - a);
    for (const b of bits) {
      const pts = front.members.filter((m) => m.config.bits === b);
      traces.push({
        name: `front ${b === 32 ? "FP32" : "INT" + b}`, type: "scatter", mode: "markers",
        meta: "front", x: pts.map(point), y: pts.map((t) => t.metrics.accuracy),
        customdata: pts.map((t) => t.number), text: pts.map(hover), hoverinfo: "text",
        marker: { color: BIT_COLORS[b] || "#7c3aed", size: 12, line: { width: 1, color: "#111" },
          symbol: pts.map((t) => DEPTH_SYMBOLS[(t.config.layers - 1) % DEPTH_SYMBOLS.length]) },
      });
    }
    // Legend-only entries: what each marker shape means.
    const depths = [...new Set(front.members.map((m) => m.config.layers))].sort((a, b) => a - b);
    for (const d of depths) {
      traces.push({
        name: `${d} layer${d === 1 ? "" : "s"}`, type: "scatter", mode: "markers", meta: "legend",
        x: [null], y: [null], hoverinfo: "skip", legendgroup: "depth",
        legendgrouptitle: { text: "marker: depth" },
        marker: { color: "#9ca3af", size: 10, symbol: DEPTH_SYMBOLS[(d - 1) % DEPTH_SYMBOLS.length] },
      });
    }
    const base = front.baselines || {};
    const teacher = [
      ["teacher PyTorch FP32", base.pytorch_fp32_ms, base.accuracy],
      ["teacher ORT FP32", base.ort_fp32_ms, base.accuracy],
      ["teacher ORT INT8", base.ort_int8_ms, base.int8_accuracy],
    ].filter((b) => b[1]);
    const ref = base.pytorch_fp32_ms;
    const bx = (ms) => (xKey === "latency_ms" ? ms : ref / ms);
    // The baselines and the budget are fixed-length figures: not drawn on a data-length axis.
    const onData = xKey.startsWith("latency_data_");
    if (!onData) traces.push({
      name: "teacher baselines", type: "scatter", mode: "markers+text", meta: "baseline",
      x: teacher.map((b) => bx(b[1])), y: teacher.map((b) => b[2]),
      text: teacher.map((b) => b[0]), textposition: "top center", hoverinfo: "text+x+y",
      marker: { symbol: "star", size: 14, color: "#dc2626" },
    });
    const shapes = [];
    if (limits.min_accuracy != null) {
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: limits.min_accuracy,
        y1: limits.min_accuracy, line: { dash: "dash", color: "#dc2626" } });
    }
    if (limits.max_latency_ms != null && !onData) {
      const x = bx(limits.max_latency_ms);
      shapes.push({ type: "line", yref: "paper", y0: 0, y1: 1, x0: x, x1: x,
        line: { dash: "dash", color: "#dc2626" } });
    }
    const layout = {
      title: { text: `${esc(study)}: Pareto front on ${esc(front.hardware_id)} ` +
        `(colour: bit width, marker: depth)`, ...TITLE_LEFT },
      xaxis: { title: { text: AXIS_TITLES[xKey] }, type: xKey.endsWith("_ms") ? "log" : "linear" },
      yaxis: { title: { text: "accuracy (ONNX Runtime, validation)" } },
      shapes, hovermode: "closest", margin: { t: 60 },
    };
    return { traces, layout };
  }

  function trialsTable(study, trials) {
    const body = document.querySelector("#trials tbody");
    const filter = document.getElementById("filter");
    const pager = document.getElementById("pager");
    const shown = document.getElementById("shown");
    const PAGE = 100;
    let sortKey = "number", ascending = true, page = 0;
    const value = (t, key) => {
      if (key === "number" || key === "status" || key === "reason") return t[key] ?? "";
      if (key === "label") return label(t.config);
      return t.metrics[key] ?? -Infinity;
    };
    function render() {
      const needle = filter.value.trim().toLowerCase();
      const rows = trials.filter((t) => !needle || t.status === needle ||
        `${t.number} ${t.status} ${label(t.config)} ${t.reason || ""}`.toLowerCase().includes(needle));
      rows.sort((a, b) => {
        const x = value(a, sortKey), y = value(b, sortKey);
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
      page = Math.min(page, Math.max(0, Math.ceil(rows.length / PAGE) - 1));
      body.replaceChildren();
      for (const t of rows.slice(page * PAGE, (page + 1) * PAGE)) {
        const row = body.insertRow();
        const lowerRung = t.metrics.top_rung === false;
        if (lowerRung) row.className = "lower-rung";
        cell(row, t.number, `/studies/${enc(study)}/trials/${t.number}`);
        cell(row, lowerRung ? `${t.status}, stopped at rung ${t.metrics.rung}` : t.status);
        cell(row, label(t.config));
        cell(row, fmt(t.metrics.accuracy, 4));
        cell(row, fmt(t.metrics.latency_ms, 2));
        cell(row, t.metrics.speedup_vs_teacher_pytorch ? `${fmt(t.metrics.speedup_vs_teacher_pytorch, 1)}x` : "-");
        cell(row, fmt(t.metrics.size_mb, 1));
        cell(row, t.reason || "");
      }
      shown.textContent = `${rows.length} of ${trials.length} trials`;
      pager.replaceChildren();
      const pages = Math.ceil(rows.length / PAGE);
      for (let i = 0; pages > 1 && i < pages; i++) {
        const button = document.createElement("button");
        button.textContent = i + 1;
        button.disabled = i === page;
        button.onclick = () => { page = i; render(); };
        pager.appendChild(button);
      }
    }
    for (const th of document.querySelectorAll("#trials th[data-key]")) {
      th.onclick = () => {
        ascending = sortKey === th.dataset.key ? !ascending : true;
        sortKey = th.dataset.key;
        render();
      };
    }
    filter.oninput = () => { page = 0; render(); };
    return { update(next) { trials = next; render(); } };
  }

  async function studyPage(study, hardware) {
    const base = `/api/studies/${enc(study)}`;
    const xSelect = document.getElementById("xaxis");
    const hwSelect = document.getElementById("hardware");
    const detail = await getJSON(base);
    const machines = Object.entries(detail.hardware);
    hwSelect.replaceChildren(...machines.map(([id, info]) =>
      new Option(`${id} (${info.cpu}, ${info.threads} thread${info.threads === 1 ? "" : "s"})`, id)));
    if (hardware) hwSelect.value = hardware;
    if (machines.length > 1) {
      const link = document.getElementById("compare-machines");
      link.href = `/compare?a=${enc(study)}&b=${enc(study)}`;
      link.hidden = false;
    }
    const limits = detail.spec.constraints || {};
    // The figure the study ranks by is the one shown first.
    const figure = FIGURE_AXES[(detail.spec.latency || {}).optimise];
    if (figure) xSelect.value = figure;
    let table = null, lastCount = -1, trials = [];

    async function draw() {
      const hw = hwSelect.value;
      const query = hw ? `?hardware=${enc(hw)}` : "";
      const front = await getJSON(`${base}/front${query}`);
      fidelityLine(front.fidelity);
      // That machine's results: its own trials and those it measured again.
      const mine = hw ? await getJSON(`${base}/trials${query}`) : trials;
      const fig = frontFigure(study, front, mine, limits, xSelect.value);
      const plot = document.getElementById("front-plot");
      await Plotly.react(plot, fig.traces, fig.layout, PLOT_CONFIG);
      if (!plot.dataset.bound) {
        plot.dataset.bound = "1";
        plot.on("plotly_click", (event) => {
          const p = event.points[0];
          if (p && p.customdata !== undefined) {
            location.href = `/studies/${enc(study)}/trials/${p.customdata}`;
          }
        });
      }
      const history = front.history;
      await Plotly.react("hypervolume-plot", [{
        x: history.map((h) => h.trials_seen), y: history.map((h) => h.hypervolume),
        mode: "lines+markers", line: { shape: "hv" }, name: "hypervolume",
      }], { title: { text: "hypervolume of the front over trials", ...TITLE_LEFT },
        xaxis: { title: { text: "finished trials" }, tickformat: "d",
          dtick: Math.max(1, Math.ceil(Math.max(...history.map((h) => h.trials_seen), 1) / 10)) },
        margin: { t: 60 } }, PLOT_CONFIG);
    }

    function fidelityLine(f) {
      const line = document.getElementById("fidelity");
      line.hidden = !f;
      if (!f) return;
      const rungs = f.rungs.map((r) => `rung ${r.rung}: ${r.trials}`).join(", ");
      line.textContent = `multi-fidelity: the front is the top rung (the whole recipe) · ` +
        `trials per rung: ${rungs} · trained ${f.trained_examples.toLocaleString()} of ` +
        `${f.full_examples.toLocaleString()} examples (${Math.round(100 * f.saved)}% saved), ` +
        `${(f.train_seconds / 3600).toFixed(2)} h instead of about ${(f.full_seconds / 3600).toFixed(2)} h`;
    }

    async function refresh() {
      const summary = await getJSON(base);
      const count = summary.complete + summary.failed + summary.stopped;
      document.getElementById("summary").textContent =
        `dataset ${summary.dataset} · teacher ${summary.teacher} · ${summary.complete} complete, ` +
        `${summary.stopped} stopped at the latency probe, ${summary.failed} failed, ` +
        `${summary.running} running · front ${summary.front_size}`;
      if (count !== lastCount) {
        lastCount = count;
        trials = await getJSON(`${base}/trials`);
        table = table || trialsTable(study, trials);
        table.update(trials);
        if (machines.length) await draw();
      }
      live(summary.running > 0);
      setTimeout(refresh, POLL_MS);
    }
    xSelect.onchange = draw;
    hwSelect.onchange = draw;
    await refresh();
    importance(base, trials.filter((t) => t.status === "complete").length);
  }

  async function importance(base, complete) {
    const target = document.getElementById("importance-plot");
    try {
      const data = await getJSON(`${base}/importance`);
      const traces = Object.entries(data).map(([objective, values]) => ({
        type: "bar", name: objective, x: Object.keys(values), y: Object.values(values),
      }));
      const caveat = complete < FEW_TRIALS
        ? `<br><sub>from ${complete} complete trials: too few to trust, read it after ` +
          `${FEW_TRIALS} or more</sub>` : "";
      await Plotly.react(target, traces, {
        title: { text: `parameter importance (Optuna)${caveat}`, ...TITLE_LEFT },
        barmode: "group", margin: { t: caveat ? 80 : 60 } }, PLOT_CONFIG);
    } catch (error) {
      target.textContent = `parameter importance: ${error.message}`;
    }
  }

  // --- trial and compare pages -------------------------------------------------------------

  function trialPage(curve) {
    if (!curve || !curve.length) return;
    const steps = curve.map((p, i) => (Array.isArray(p) ? p[0] : p.step ?? i));
    const losses = curve.map((p) => (Array.isArray(p) ? p[1] : p.loss ?? p));
    Plotly.newPlot("curve-plot", [{ x: steps, y: losses, mode: "lines+markers", name: "loss" }],
      { title: { text: "distillation loss", ...TITLE_LEFT }, xaxis: { title: { text: "step" } },
        margin: { t: 60 } }, PLOT_CONFIG);
  }

  async function comparePage(a, b) {
    const traces = [];
    const machines = [];
    // One study twice: its fronts on every machine that measured it.
    for (const [i, name] of (a === b ? [a] : [a, b]).entries()) {
      const detail = await getJSON(`/api/studies/${enc(name)}`);
      for (const [hw, info] of Object.entries(detail.hardware)) {
        const front = await getJSON(`/api/studies/${enc(name)}/front?hardware=${enc(hw)}`);
        machines.push(hw);
        traces.push({
          name: `${esc(name)} on ${esc(hw)} (${esc(info.cpu)})`, mode: "lines+markers",
          meta: "front", line: { shape: "hv", dash: i ? "dot" : "solid" },
          x: front.members.map((m) => m.metrics.latency_ms),
          y: front.members.map((m) => m.metrics.accuracy),
          text: front.members.map(hover), hoverinfo: "text",
        });
      }
    }
    const distinct = new Set(machines).size;
    document.getElementById("machines").textContent = distinct > 1
      ? `These fronts come from ${distinct} different hardware fingerprints: latencies of one ` +
        "machine say nothing about another."
      : "All fronts were measured on the same hardware fingerprint.";
    await Plotly.newPlot("compare-plot", traces, {
      xaxis: { title: { text: "latency (ms, batch 1)" }, type: "log" },
      yaxis: { title: { text: "accuracy" } }, title: { text: `${esc(a)} vs ${esc(b)}` },
    }, { responsive: true });
  }

  return { studiesPage, studyPage, trialPage, comparePage, esc, label };
})();
