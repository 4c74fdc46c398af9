"""The results in PnPInversion's formats: ``evaluate.py``'s CSV (``file_id``, then ``<method>|<metric>`` for each
method and metric, one row per item, raw values) and the paper's table (PnP Inversion, Table 1: the means over the
items in its units: structure distance x10^3, background PSNR, LPIPS x10^3, MSE x10^4, SSIM x10^2, CLIP similarity
whole and edited), as markdown and CSV."""
from __future__ import annotations

import csv
from pathlib import Path

from .metrics import TABLE, finite

RESULT_CSV = "evaluation_result.csv"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"


def write_items(path: Path, methods: list[str], metrics: list[str], rows: list[list]) -> None:
    """``evaluate.py``'s result file: the header and one row per item (``[file_id, value, ...]``)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_id"] + [f"{m}|{metric}" for m in methods for metric in metrics])
        for row in rows:
            w.writerow(row)


def read_items(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def summary(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """(headings, one row per method): ``TABLE``'s columns, each the mean of the column's numbers over the items in
    the paper's unit, two decimals; "skipped: <why>" where the metric was not computed; "n/a" where the CSV lacks
    the metric or it has no number. Items: how many were scored (and how many runs failed)."""
    methods = list(dict.fromkeys(h.rsplit("|", 1)[0] for h in header[1:]))
    out = []
    for m in methods:
        cols = [i for i, h in enumerate(header) if h.rsplit("|", 1)[0] == m]
        failed = sum(any(str(r[i]).startswith("failed") for i in cols) for r in rows)
        line = [m, str(len(rows)) if not failed else f"{len(rows) - failed} ({failed} failed: see {RESULT_CSV})"]
        for _, metric, scale in TABLE:
            key = f"{m}|{metric}"
            if key not in header:
                line.append("n/a")
                continue
            col = [r[header.index(key)] for r in rows]
            skipped = next((v for v in col if str(v).startswith("skipped")), None)
            values = finite(col)
            line.append(skipped if skipped and not values else f"{scale * sum(values) / len(values):.2f}" if values
                        else "n/a")
        out.append(line)
    return ["Method", "Items"] + [h for h, _, _ in TABLE], out


def write_summary(out: Path, header: list[str], rows: list[list[str]], note: str = "") -> str:
    headings, lines = summary(header, rows)
    with open(out / SUMMARY_CSV, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(headings)
        w.writerows(lines)
    md = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    md += ["| " + " | ".join(line) + " |" for line in lines]
    text = (note + "\n\n" if note else "") + "\n".join(md) + "\n"
    (out / SUMMARY_MD).write_text(text, encoding="utf-8")
    return text
