"""One look for every figure: sizes, palette, grid, and how figures are saved.

Two styles: `default` (screen-sized, PNG and SVG) and `paper` (one column of a two-column
paper, 3.5 in wide, small fonts, PDF and SVG with the fonts embedded: TrueType (Type 42) in
the PDF, glyph outlines in the SVG, so a figure looks the same wherever it is opened and
passes publishers' font checks). A style applies to the figures made and saved under
`using(name)`."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, Locator, LogLocator, MaxNLocator, NullFormatter

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip
RC = {"axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
      "font.size": 9, "legend.fontsize": 8, "axes.titlesize": 10}  # fmt: skip


STYLES = ("default", "paper")
#: One column of a two-column paper (IEEE, ACM: 3.33-3.5 in), and the tallest a figure gets.
PAPER_WIDTH_IN, PAPER_MAX_HEIGHT_IN = 3.5, 6.0
PAPER_RC = {"font.size": 7, "legend.fontsize": 6, "axes.titlesize": 7, "axes.labelsize": 7,
            "xtick.labelsize": 6, "ytick.labelsize": 6, "figure.titlesize": 7,
            "lines.linewidth": 1.0, "pdf.fonttype": 42, "ps.fonttype": 42,
            "svg.fonttype": "path"}  # fmt: skip
#: What each style writes, and at which resolution (dots per inch) for bitmaps.
FORMATS = {"default": ("png", "svg"), "paper": ("pdf", "svg")}
DPI = {"default": 120, "paper": 300}

_current: contextvars.ContextVar[str] = contextvars.ContextVar("coldsim_style", default="default")


def current() -> str:
    """The style figures are made and saved in now."""
    return _current.get()


@contextlib.contextmanager
def using(name: str | None) -> Iterator[str]:
    """Make and save figures in style `name` (None: leave the current one) inside the block."""
    if name is None:
        yield current()
        return
    if name not in STYLES:
        raise ValueError(f"unknown figure style {name!r}: expected one of {', '.join(STYLES)}")
    token = _current.set(name)
    try:
        yield name
    finally:
        _current.reset(token)


def rc() -> dict:
    """matplotlib settings of the current style."""
    return {**RC, **PAPER_RC} if current() == "paper" else dict(RC)


#: A paper figure is this much taller than the screen figure's proportions: a column is
#: narrow, and its legends go below the axes.
PAPER_TALLER = 1.5


def size(width: float, height: float) -> tuple[float, float]:
    """A figure's size in the current style: as asked, or one paper column wide, a little
    taller than the same proportions (and no taller than PAPER_MAX_HEIGHT_IN)."""
    if current() != "paper":
        return width, height
    return PAPER_WIDTH_IN, min(PAPER_MAX_HEIGHT_IN, PAPER_TALLER * height * PAPER_WIDTH_IN / width)


def styled(make):
    """Build a figure under its style's settings: text made after the figure (titles,
    colour bars, legends) takes the style's fonts too."""
    import functools

    @functools.wraps(make)
    def wrapper(*args, **kwargs):
        import matplotlib as mpl

        with mpl.rc_context(rc()):
            return make(*args, **kwargs)

    return wrapper


def pt(points: float) -> float:
    """A font size in points, as the default style writes it, in the current style (paper
    fonts are smaller, down to 5.5 pt, the smallest a printed figure should carry)."""
    return points if current() != "paper" else max(5.5, points * PAPER_RC["font.size"] / 9)


def figure(width: float = 7.5, height: float = 4.2) -> tuple[Figure, object]:
    fig, axes = figures(1, 1, width, height)
    return fig, axes[0]


def figures(rows: int, cols: int, width: float = 7.5, height: float = 4.2):
    """A figure of rows x cols panels, sharing the look: (figure, flat list of axes)."""
    import matplotlib as mpl

    with mpl.rc_context(rc()):
        fig = Figure(figsize=size(width, height), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    fig._coldsim_style = current()  # saved as made, wherever it is saved
    for ax in axes:
        if current() == "paper":  # (ticks are made when drawn: fix their size now)
            ax.tick_params(labelsize=PAPER_RC["xtick.labelsize"])
        ax.grid(True, alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def show_in_jupyter() -> None:
    """Let IPython display the figures coldsim returns. They are made without pyplot (no
    global state, no GUI), so unless `%matplotlib inline` is on, Jupyter would print their
    repr instead of the image; a PNG formatter for Figure fixes that."""
    import sys

    if "IPython" not in sys.modules:  # not in IPython: nothing to do, nothing imported
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(Figure)
    except KeyError:  # nobody displays figures yet
        png.for_type(Figure, _png)


def _png(fig: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


#: Quantiles drawn per CDF curve: enough for the eye, cheap for millions of rows.
CDF_POINTS = 2000


#: Where a log-scale CDF draws latencies of 0 ms (a log axis has no 0).
ZERO_MS = 0.01


def cdf(ax, latency_ms: np.ndarray, label: str = "", weights=None, **line) -> int:
    """Draw the empirical CDF of latencies (NaN: requests that never ran, left out) as a step
    curve for a log axis; `weights`: how many requests each value stands for (a sketch's
    bins), else one each. Every request is drawn: those of 0 ms at ZERO_MS, which the label
    says. Returns how many were drawn."""
    lat = np.asarray(latency_ms, dtype=float)
    w = np.ones(len(lat)) if weights is None else np.asarray(weights, dtype=float)
    finite = np.isfinite(lat)
    lat, w = lat[finite], w[finite]
    n = int(round(w.sum()))
    zeros = int(round(w[lat <= 0].sum()))
    if n:
        lat = np.maximum(lat, ZERO_MS)
        q = np.linspace(0, 1, min(CDF_POINTS, n))
        if weights is None:
            x = np.quantile(lat, q)
        else:  # the value at each rank q (n - 1), as the sketch's percentiles are read
            order = np.argsort(lat, kind="stable")
            cum = np.cumsum(w[order])
            x = lat[order][np.minimum(np.searchsorted(cum, q * (n - 1), side="right"),
                                      len(cum) - 1)]  # fmt: skip
        note = f"; {zeros:,} at 0 ms, drawn at {ZERO_MS:g}" if zeros else ""
        ax.step(x, q, where="post", label=f"{label} (n={n:,}{note})", **line)
    return n


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def save(fig: Figure, stem: Path, formats: tuple[str, ...] | None = None) -> list[Path]:
    """Write the figure as stem.<format> for each of `formats` (default: its style's: PNG and
    SVG, or for a paper figure PDF and SVG), with its style's fonts and resolution."""
    import matplotlib as mpl

    name = getattr(fig, "_coldsim_style", current())
    paths = [stem.with_name(f"{stem.name}.{f}") for f in formats or FORMATS[name]]
    with using(name), mpl.rc_context(rc()):  # font embedding is read when saving
        for path in paths:
            fig.savefig(path, dpi=DPI[name])
    return paths


def integer_ticks(axis) -> None:
    """Ticks at whole numbers only (counts: instances, cold starts, hosts)."""
    axis.set_major_locator(MaxNLocator(nbins="auto", integer=True))  # as many as fit


def log_ticks(axis, max_labels: int = 6) -> None:
    """Readable ticks for a log axis in a panel of any width (LogTicks), written plainly
    (0.1, 1, 250, 1,000; 10⁶ beyond), and unlabelled minor ticks: matplotlib labels those
    itself over short spans, and they overprint in narrow panels."""
    axis.set_major_locator(LogTicks(max_labels))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10) * 1.0, numticks=12))
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(NullFormatter())


class LogTicks(Locator):
    """Major ticks of a log axis, decided when drawn, as many as fit the axis's length
    side by side (and at most `max_labels`): powers of ten (every second or third when they
    do not all fit); over too short a span for two of them, 1, 2 and 5 times them; over less
    than that (300-700 ms), a few evenly spaced round values."""

    def __init__(self, max_labels: int = 6):
        self.max_labels = max_labels

    def __call__(self):
        from matplotlib.axis import XAxis

        box = self.axis.axes.bbox
        length_px = box.width if isinstance(self.axis, XAxis) else box.height
        room_pt = length_px * 72.0 / self.axis.axes.figure.dpi
        size_pt = self.axis.majorTicks[0].label1.get_fontsize()
        return self.tick_values(*self.axis.get_view_interval(), room_pt=room_pt, size_pt=size_pt)

    def tick_values(self, vmin, vmax, room_pt: float = np.inf, size_pt: float = 9.0):
        lo, hi = sorted((float(vmin), float(vmax)))
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= 0:
            return np.array([])
        lo = lo if lo > 0 else hi * 1e-3
        inside = lambda t: t[(t >= lo * (1 - 1e-9)) & (t <= hi * (1 + 1e-9))]  # noqa: E731

        def fits(ticks) -> bool:  # labels side by side, a character's gap between them
            labels = [_plain(t) for t in inside(ticks)]
            width = sum(0.62 * size_pt * len(text) for text in labels)
            return len(labels) <= self.max_labels and width + size_pt * len(labels) <= room_pt

        first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
        exponents = np.arange(first, last + 1)
        decades = 10.0 ** exponents
        if len(inside(decades)) >= 2:
            for k in range(1, len(exponents) + 1):  # every k-th power of ten
                ticks = decades[exponents % k == 0]
                if len(inside(ticks)) < 2:
                    break
                if fits(ticks):
                    return ticks
            return inside(decades)[[0, -1]]  # the outermost two
        steps = np.outer(decades, (1.0, 2.0, 5.0)).ravel()
        if len(inside(steps)) >= 2 and fits(steps):
            return steps
        for bins in range(max(2, self.max_labels - 1), 0, -1):
            ticks = inside(MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
            if len(ticks) >= 2 and fits(ticks):
                return ticks
        return inside(steps)[:1] if len(inside(steps)) else np.array([lo])


def _plain(value: float, _pos=None) -> str:
    """A tick value as a person writes it: 0.01, 0.25, 5, 2,000; beyond 10⁵ and under 10⁻³
    as powers of ten."""
    if value <= 0:
        return ""
    exponent = int(np.floor(np.log10(value) + 1e-9))
    if exponent > 5 or exponent < -3:
        mantissa = value / 10.0**exponent
        digits = str(exponent).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
        return (f"{mantissa:g}×" if round(mantissa, 6) != 1 else "") + f"10{digits}"
    text = f"{value:.6g}"
    decimals = len(text.split(".")[1]) if "." in text else 0
    return f"{value:,.{decimals}f}"
