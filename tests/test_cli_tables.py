"""The console tables of `plait train`, `plait evaluate`, `plait demo` and `plait align` read in an
80-column terminal: no line longer than 80, no cell cut to '…', long names wrapped."""

from __future__ import annotations

import io

from rich.console import Console

from plait.align.frames import LoadStats
from plait.align.report import AlignmentReport, StreamReport
from plait.cli.align import show_report
from plait.cli.demo import accuracy_table
from plait.cli.show import metrics_table
from plait.evaluation.result import Headline


def _render(*renderables: object, width: int = 80) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    for r in renderables:
        console.print(r)
    return console.export_text()


def _fits(text: str) -> None:
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_metrics_tables_fit_80_columns_with_long_names_and_large_numbers() -> None:
    classification = metrics_table(
        {"accuracy": 0.912345, "macro_f1": 0.9011, "auroc": 0.98765},
        {
            "vibration_signal_of_the_left_bearing": {"accuracy": 0.5, "macro_f1": 0.4, "auroc": 0.7},
            "thermal": {"accuracy": 0.6, "macro_f1": 0.5},
        },
        title="/a/rather/long/path/to/the/evaluation/table/of/pump/inspections.parquet (270 rows)",
        interval=Headline("accuracy", 0.91, 0.88, 0.94, 0.95),
    )
    regression = metrics_table(
        {"rmse": 1234.5678, "mae": 987.654, "r2": 0.87}, {"a": {"rmse": 12345678.9, "mae": 1.0, "r2": -0.5}}
    )
    text = _render(classification, regression)
    _fits(text)
    for figure in ("0.912", "0.901", "0.988", "1234.568", "1.235e+07", "-0.500", "0.880–0.940"):
        assert figure in text
    assert "vibration_signal_of_the_left_bearing alone" in text
    narrow = _render(classification, width=50)  # too narrow for the name: it wraps, the numbers stay whole
    assert "…" not in narrow and "0.912" in narrow and "0.988" in narrow


def test_the_demo_table_fits() -> None:
    text = _render(accuracy_table({"vibration": 0.71, "sound": 0.66, "thermal": 0.58}, 0.934))
    _fits(text)
    assert "0.934" in text and "vibration alone" in text


def _stream(name: str, kind: str, **load: int) -> StreamReport:
    return StreamReport(
        name=name,
        kind=kind,
        anchors=1800,
        observed=1750,
        imputed=30,
        absent=20,
        gap_p50_s=0.005,
        gap_p95_s=617_000.0,
        gap_max_s=6_450_000.0,
        load=LoadStats(rows_read=1800, rows_kept=1790, **load),
    )


def test_the_alignment_report_fits_and_lists_anomalies_under_the_table() -> None:
    report = AlignmentReport(
        anchors=1800,
        rows=1790,
        streams=(
            _stream("vibration", "timeseries", unsorted=1, duplicates=2, jumps=1, non_finite=4),
            _stream("accelerometer_of_the_left_bearing_housing", "timeseries"),
            _stream("machines", "tabular"),
        ),
        dropped={"no anchor time": 10},
        notes=("thermal: clock offsets applied: 60 entities from -8 s to -2 s",),
    )
    console = Console(width=80, record=True, file=io.StringIO())
    show_report(report, console)
    text = console.export_text()
    _fits(text)
    for figure in ("98.9", "1.7", "1.1", "5 ms", "7.14 d", "74.7 d"):
        assert figure in text, figure
    assert "anomalies in vibration: 1 unsorted, 2 duplicates, 1 clock jumps, 4 non-finite readings" in (
        " ".join(text.split())
    )
    assert "anomalies in machines" not in text
