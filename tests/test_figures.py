"""Figures: what a reader relies on, checked on the drawn figures (layout, ticks, labels,
legends, styles), not on pixels."""

from __future__ import annotations

import itertools
import re
import tracemalloc

import numpy as np
import pytest
from coldsim import ScenarioError, load_scenario, parse_scenario, simulate, sweep
from coldsim.cli import app
from coldsim.reporting import plots, style
from coldsim.reporting.intervals import _weighted_integral, alive_over_time, grouped_integral
from coldsim.studies import compare as compare_module
from coldsim.studies.compare import compare, knob_scale, pareto_ci
from conftest import ROOT, const, function, scenario
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import StepPatch
from typer.testing import CliRunner


def rendered(fig):
    """Draw the figure (its layout settled) and return the renderer."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    return renderer


def overlapping(boxes) -> list:
    return [(a, b) for a, b in itertools.combinations(boxes, 2) if a.overlaps(b)]


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def cluster_mean_used_mb(summary) -> float:
    """The cluster's time-average memory held on hosts, as the summary names it (one place to
    change when the summary's host keys are renamed)."""
    return summary["hosts"]["cluster_mean_used_mb"]


@pytest.fixture(scope="module")
def captured(monkeypatch_module):
    """The figures compare() draws, by stem (kept from its last call)."""
    figs = {}
    original = compare_module._write

    def keep(out, tables, fs):
        figs.clear()
        figs.update(fs)
        original(out, tables, fs)

    monkeypatch_module.setattr(compare_module, "_write", keep)
    return figs


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


# --- paper style ---------------------------------------------------------------------------


def test_paper_style_writes_one_column_pdf_and_svg_with_embedded_truetype(tmp_path):
    f = function(arrivals={"process": "poisson", "rate_per_s": 1}, duration=const(50),
                 init=const(200))  # fmt: skip
    res = simulate(parse_scenario(scenario(f, duration_s=600, warmup_s=60, idle_s=30)))
    out = res.save(tmp_path / "paper", figure_style="paper")
    for stem in ("latency_cdf", "instances_over_time", "cold_starts_over_time"):
        assert (out / f"{stem}.pdf").is_file() and (out / f"{stem}.svg").is_file()
        assert not (out / f"{stem}.png").exists()
    pdf = (out / "latency_cdf.pdf").read_bytes()
    # Type 42: the TrueType font embedded (FontFile2, as a CID font of TrueType outlines)
    assert b"/FontFile2" in pdf and b"/CIDFontType2" in pdf
    assert b"/Type3" not in pdf
    width_pt = float(re.search(rb"/MediaBox \[\s*0 0 ([\d.]+)", pdf).group(1))
    assert width_pt == pytest.approx(style.PAPER_WIDTH_IN * 72)
    svg = (out / "latency_cdf.svg").read_text()
    assert "<text" not in svg and "<path" in svg  # glyphs as outlines: no font needed
    # The default stays PNG, and the style does not leak out of its block.
    assert style.current() == "default"
    default = res.save(tmp_path / "screen")
    assert (default / "latency_cdf.png").is_file() and not (default / "latency_cdf.pdf").exists()


def test_run_and_compare_take_style_paper_from_the_cli(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text((ROOT / "scenarios" / "default.yaml").read_text().replace(
        "duration_s: 3600", "duration_s: 900"))  # fmt: skip
    runner = CliRunner()
    r = runner.invoke(app, ["run", str(path), "--style", "paper", "--out", str(tmp_path / "r"),
                            "-q"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r" / "instances_over_time.pdf").is_file()
    r = runner.invoke(app, ["compare", str(tmp_path / "r"), "--style", "paper", "--out",
                            str(tmp_path / "c")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c" / "cost_vs_p99.pdf").is_file()
    assert (tmp_path / "c" / "cost_vs_p99.svg").is_file()
    r = runner.invoke(app, ["run", str(path), "--style", "poster", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "poster" in r.output and not (tmp_path / "x").exists()


# --- compare ---------------------------------------------------------------------------------


def test_knob_axes_are_logarithmic_from_two_decades():
    assert knob_scale(np.array([5.0, 60, 600])) == ("log", None)  # 120x
    assert knob_scale(np.array([1.0, 100])) == ("log", None)  # exactly two decades
    assert knob_scale(np.array([30.0, 60, 1200 / 50])) == ("linear", None)
    assert knob_scale(np.array([0.0, 1, 10, 100])) == ("symlog", 1.0)  # 0 has no log
    assert knob_scale(np.array([0.0, 5, 10])) == ("linear", None)
    assert knob_scale(np.array([-1.0, 10, 1000])) == ("linear", None)


def test_a_sweeps_figures_use_a_log_axis_and_the_given_labels(tmp_path, captured):
    base = load_scenario(ROOT / "scenarios" / "default.yaml", duration_s=900)
    grid = {"platform.keep_alive.idle_s": [5, 60, 900], "functions.0.memory_mb": [128, 512]}
    sweep(base, grid, 2, workers=1, out=tmp_path / "sw")
    compare([tmp_path / "sw"], tmp_path / "c", labels=["small", "large"])
    ax = captured["cold_start_rate_vs_knob"].axes[0]
    assert ax.get_xscale() == "log"
    assert legend_texts(ax) == ["small", "large"]
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(re.fullmatch(r"[\d,.]+", t) for t in ticks)  # plainly written
    with pytest.raises(ScenarioError, match="3 label.*2 series"):
        compare([tmp_path / "sw"], tmp_path / "c2", labels=["a", "b", "c"])
    assert not (tmp_path / "c2").exists()
    sweep(base, {"platform.keep_alive.idle_s": [30, 60]}, 2, workers=1, out=tmp_path / "lin")
    compare([tmp_path / "lin"], tmp_path / "c3")
    assert captured["cold_start_rate_vs_knob"].axes[0].get_xscale() == "linear"


def test_compare_labels_name_the_runs_everywhere(tmp_path, captured):
    f = function(arrivals={"process": "poisson", "rate_per_s": 2}, duration=const(20),
                 init=const(300))  # fmt: skip
    a = simulate(parse_scenario(scenario(f, duration_s=900, idle_s=10)))
    b = simulate(parse_scenario(scenario(f, duration_s=900, idle_s=300)))
    table = compare([a, b], tmp_path / "c", labels=["10 s", "5 min"])
    assert table["run"].tolist() == ["10 s", "5 min"]
    for stem in ("latency_cdf", "instances_over_time", "cold_starts_over_time"):
        names = [t.split(" (n=")[0] for t in legend_texts(captured[stem].axes[0])]
        assert names == ["10 s", "5 min"], stem
    ticks = [t.get_text() for t in captured["cold_start_rate"].axes[0].get_xticklabels()]
    assert ticks == ["10 s", "5 min"]
    with pytest.raises(ScenarioError, match="1 label.*2 runs"):
        compare([a, b], tmp_path / "c2", labels=["one"])
    with pytest.raises(ScenarioError, match="distinct"):
        compare([a, b], tmp_path / "c2", labels=["x", "x"])
    r = CliRunner().invoke(app, ["compare", str(a.save(tmp_path / "ra")), "--label", "a",
                                 "--label", "b", "--out", str(tmp_path / "c4")])  # fmt: skip
    assert r.exit_code == 2 and "--label" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("seed", range(4))
def test_cost_vs_p99_labels_never_overprint_nor_leave_the_axes(seed):
    rng = np.random.default_rng(seed)
    n = 12  # every point labelled (MAX_LABELS), bunched in a corner and along a curve
    cost = np.r_[rng.uniform(1.0, 1.05, n // 2), rng.uniform(1, 3, n - n // 2)]
    p99 = np.r_[rng.uniform(100, 104, n // 2), 300 / cost[n // 2 :]]
    labels = [f"keep_alive.idle_s={60 * i}, memory_mb={128 * (i % 4 + 1)}" for i in range(n)]
    fig = compare_module._pareto_figure((cost, cost, cost), (p99, p99, p99), labels)
    ax = fig.axes[0]
    renderer = rendered(fig)
    notes = [a for a in ax.texts if a.get_text() in labels]
    boxes = [a.get_window_extent(renderer) for a in notes]
    frame = ax.get_window_extent(renderer)
    assert notes, "some labels are placed"
    assert not overlapping(boxes)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
               for b in boxes)  # fmt: skip
    legend = ax.get_legend().get_window_extent(renderer)
    assert not any(b.overlaps(legend) for b in boxes)
    left_off = n - len(notes)
    title = ax.get_title()
    assert (f"{left_off} label(s) left off" in title) if left_off else "left off" not in title


def test_the_frontier_is_marked_only_where_points_differ_beyond_their_cis():
    labels = ["a", "b", "c"]
    mean = np.array([1.0, 2.0, 3.0])
    # Within each other's CIs on both axes: no frontier is marked.
    fig = compare_module._pareto_figure((mean, mean - 2, mean + 2), (mean[::-1],) * 3, labels)
    ax = fig.axes[0]
    assert legend_texts(ax) == ["no point beaten beyond the CIs"]
    assert not [line for line in ax.lines if line.get_gid() == "frontier"]
    # c costs more beyond the CIs at the same p99: beaten; a and b form the frontier.
    cost = np.array([1.0, 1.5, 3.0])
    p99 = np.array([5.0, 4.0, 4.0])
    fig = compare_module._pareto_figure((cost, cost - 0.2, cost + 0.2),
                                        (p99, p99 - 1.5, p99 + 1.5), labels)  # fmt: skip
    ax = fig.axes[0]
    assert legend_texts(ax) == ["beaten beyond the CIs", "frontier (beaten by none beyond the CIs)"]
    (line,) = [line for line in ax.lines if line.get_gid() == "frontier"]
    assert list(line.get_xdata()) == [1.0, 1.5]  # the frontier's line joins a and b
    # Equal means (common random numbers) shield nothing: beaten on cost beyond the CIs.
    assert pareto_ci(cost, cost - 0.2, cost + 0.2, p99, p99 - 1.5, p99 + 1.5).tolist() == [
        True, True, False]  # fmt: skip


# --- a run's figures -----------------------------------------------------------------------


def test_latency_cdf_panels_are_all_used_and_their_tick_labels_never_overlap():
    spans = {"flat": const(300), "wide": {"dist": "lognormal", "median_ms": 5, "sigma": 3.0},
             "narrow": {"dist": "uniform", "low_ms": 180, "high_ms": 260},
             "slow": {"dist": "lognormal", "median_ms": 20000, "sigma": 0.3},
             "zero": const(0)}  # fmt: skip
    fs = [function(name, arrivals={"process": "poisson", "rate_per_s": 2}, duration=d,
                   init=const(400)) for name, d in spans.items()]  # fmt: skip
    res = simulate(parse_scenario(scenario(*fs, duration_s=900, idle_s=20)))
    for figure_style in style.STYLES:
        with style.using(figure_style):
            fig = res.plot_latency_cdf()
        renderer = rendered(fig)
        assert len(fig.axes) == len(spans)  # five panels, no empty frame
        assert {ax.get_title() for ax in fig.axes} == set(spans)
        for ax in fig.axes:
            assert ax.lines, ax.get_title()
            for axis in (ax.xaxis, ax.yaxis):
                labels = [t for t in axis.get_ticklabels(which="both")
                          if t.get_visible() and t.get_text()]  # fmt: skip
                assert len(labels) >= 2, (figure_style, ax.get_title())
                assert not overlapping([t.get_window_extent(renderer) for t in labels]), (
                    figure_style, ax.get_title(), [t.get_text() for t in labels])


def test_count_axes_have_integer_ticks_and_the_warm_up_is_labelled():
    f = function(arrivals={"process": "poisson", "rate_per_s": 0.02}, duration=const(100),
                 init=const(200))  # fmt: skip
    res = simulate(parse_scenario(scenario(f, duration_s=3600, warmup_s=600, idle_s=60)))
    for fig in (res.plot_instances(), res.plot_cold_starts()):
        rendered(fig)
        ax = fig.axes[0]
        ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
        assert plots.WARMUP_LABEL in legend_texts(ax)


def test_instances_show_provisioned_apart_from_on_demand():
    res = simulate(load_scenario(ROOT / "scenarios" / "provisioned-vs-warmers.yaml",
                                 duration_s=4 * 3600))  # fmt: skip
    fig = res.plot_instances()
    ax = fig.axes[0]
    assert [t for t in legend_texts(ax) if t != plots.WARMUP_LABEL] == [
        "provisioned: busy", "provisioned: idle", "on-demand: busy (init + execution)",
        "on-demand: idle (warm)"]  # fmt: skip
    layers = [p for p in ax.patches if isinstance(p, StepPatch)]
    (pc_busy, _, _), (pc_top, _, _) = layers[0].get_data(), layers[1].get_data()
    inst = res.instances
    pc = inst["provisioned"].to_numpy()
    assert np.allclose(pc_top, alive_over_time(inst[pc], res.stats.edges))
    od_top = layers[3].get_data()[0]
    assert np.allclose(od_top - pc_top, alive_over_time(inst[~pc], res.stats.edges))
    assert (pc_busy <= pc_top + 1e-9).all() and pc_busy.sum() > 0


def test_instances_memory_with_hosts_is_the_footprint_the_hosts_hold():
    sc = load_scenario(ROOT / "scenarios" / "cluster-pressure.yaml", ["warmup_s=400"],
                       duration_s=4000)  # fmt: skip
    res = simulate(sc)
    fig = res.plot_instances()
    memory = fig.axes[1]
    assert "cluster" in memory.get_ylabel() and "host_memory_mb" in memory.get_title()
    top = [p for p in memory.patches if isinstance(p, StepPatch)][-1].get_data()[0]
    edges = res.stats.edges  # (the figure's, in seconds)
    counted = edges[:-1] >= sc.warmup_s  # bins of the stats window (400 s is a bin edge)
    assert np.isclose(edges[counted.argmax()], sc.warmup_s)
    mean_gb = top[counted].mean()  # equal bins: the time average
    assert mean_gb * 1024 == pytest.approx(cluster_mean_used_mb(res.summary), rel=1e-9)
    capacity = [line for line in memory.lines if line.get_label() == "the hosts' memory"]
    assert capacity and capacity[0].get_ydata()[0] == pytest.approx(3 * 4096 / 1024)


def test_hosts_figure_held_and_idle_panels_differ_and_mark_the_warm_up():
    sc = load_scenario(ROOT / "scenarios" / "cluster-pressure.yaml", duration_s=3600)
    fig = simulate(sc).plot_hosts()
    held, idle = fig.axes[0].images[0], fig.axes[1].images[0]
    assert held.get_cmap().name != idle.get_cmap().name
    assert not np.allclose(held.get_array(), idle.get_array())
    assert "% of the host's memory" in fig.axes[-2].get_ylabel()  # the colour bars
    for ax in fig.axes[:2]:
        assert any(plots.WARMUP_LABEL in t.get_text() for t in ax.texts)


def test_hosts_figure_at_10000_hosts_is_bounded_and_readable():
    f = function(arrivals={"process": "poisson", "rate_per_s": 40}, duration=const(2000),
                 init=const(300), memory_mb=128)  # fmt: skip
    data = scenario(f, duration_s=600, warmup_s=60, idle_s=60)
    data["platform"]["hosts"] = {"count": 10_000, "memory_mb": 512, "placement": "least-loaded"}
    res = simulate(parse_scenario(data))
    tracemalloc.start()
    try:
        fig = res.plot_hosts()
        rendered(fig)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20  # (hosts x bins floats are 16 MB; a bar per host was far more)
    artists = sum(len(ax.get_children()) for ax in fig.axes)
    assert artists < 120
    held, idle = fig.axes[0], fig.axes[1]
    assert "10,000 hosts" in held.get_title()
    assert {line.get_edgecolor() for line in held.patches[1:3]} != {
        line.get_edgecolor() for line in idle.patches[1:3]}  # fmt: skip
    for ax in (held, idle):
        texts = legend_texts(ax)
        assert plots.WARMUP_LABEL in texts and "hosts' p50" in texts and "fullest host" in texts
    ranked = fig.axes[2]
    assert "of 10,000 hosts held memory" in ranked.get_title()


def test_host_memory_in_one_pass_equals_host_by_host():
    rng = np.random.default_rng(5)
    n = 500
    start = rng.uniform(0, 100, n)
    end = start + rng.exponential(10, n)
    end[::17] = np.inf  # alive at the end
    weight = rng.choice([128.0, 256.0, 1769.0], n)
    group = rng.integers(0, 7, n)
    edges = np.linspace(0, 120, 25)
    together = grouped_integral(start, end, weight, group, 8, edges)
    for g in range(8):
        mine = group == g
        alone = _weighted_integral(start[mine], end[mine], weight[mine], edges)
        assert np.allclose(together[g], alone, rtol=1e-12, atol=1e-6)
