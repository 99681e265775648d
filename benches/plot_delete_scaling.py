#!/usr/bin/env python3
"""Plot the delete-scaling benchmark and fit its slopes.

Reads the CSV lines (``csv,layout,blocks,changed,metadata_writes_of_delete``)
that the bench prints, and for the cases they name, criterion's mean times
from the latest run of each case under target/criterion/delete_middle/ of the
repository. It then writes an SVG with two log-log panels (delete time and metadata
writes against the disk size N, one line per change size d and layout) and
prints the fitted log-log slope of each line. A slope near 0 means the cost
does not grow with N at a fixed d; a slope near 1 means it grows in proportion
to N. It also prints the least-squares fit of the writes to
a * d + b * (N / 1024) + c over every case.

Usage: cargo bench --bench delete_scaling | tee bench.log
       python3 benches/plot_delete_scaling.py bench.log docs/delete-scaling.svg
"""

import json
import math
import pathlib
import sys

LABELS = ["d=1", "d=1%", "d=10%", "scattered-d=1%", "scattered-d=10%"]
COLORS = {
    "d=1": "#1b6ca8",
    "d=1%": "#d1495b",
    "d=10%": "#2e933c",
    "scattered-d=1%": "#e09f3e",
    "scattered-d=10%": "#7b2cbf",
}


def criterion_times(group, cases):
    """Returns {label: {blocks: mean seconds}} for the (label, blocks) pairs
    in `cases`, from criterion's estimates for benchmark group `group`.

    The estimates are those of the latest run of each case, so a case that
    the log lacks is left out rather than taken from an older run.
    """
    root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion" / group
    times = {}
    for label, blocks in cases:
        folder = root / label.replace("%", "_")
        if not folder.is_dir():
            folder = root / label
        estimate = folder / str(blocks) / "new" / "estimates.json"
        if estimate.is_file():
            mean_ns = json.loads(estimate.read_text())["mean"]["point_estimate"]
            times.setdefault(label, {})[blocks] = mean_ns / 1e9
    if not times:
        print(f"no criterion estimates for these cases under {root}", file=sys.stderr)
    return times


def case_label(layout, blocks, changed):
    """Returns the label of a case from its CSV fields, or None if none fits."""
    sizes = {1: "d=1", blocks // 100: "d=1%", blocks // 10: "d=10%"}
    label = sizes.get(changed)
    if label is not None and layout == "scattered":
        label = "scattered-" + label
    return label


def metadata_writes(log_path):
    """Returns ({label: {blocks: writes}}, [(blocks, changed, writes)])."""
    writes, cases = {}, []
    for line in pathlib.Path(log_path).read_text().splitlines():
        parts = line.strip().split(",")
        if len(parts) != 5 or parts[0] != "csv" or not parts[2].isdigit():
            continue
        blocks, changed, count = int(parts[2]), int(parts[3]), int(parts[4])
        label = case_label(parts[1], blocks, changed)
        if label is None:
            continue
        writes.setdefault(label, {})[blocks] = count
        cases.append((blocks, changed, count))
    return writes, cases


def fit_linear(cases):
    """Least-squares (a, b, c) of writes = a * d + b * (N / 1024) + c."""
    rows = [(float(d), n / 1024.0, 1.0) for n, d, _ in cases]
    ys = [float(w) for _, _, w in cases]
    # Normal equations, solved by Gaussian elimination on the 3x3 system.
    m = [[sum(r[i] * r[j] for r in rows) for j in range(3)] + [sum(r[i] * y for r, y in zip(rows, ys))] for i in range(3)]
    for col in range(3):
        pivot = max(range(col, 3), key=lambda row: abs(m[row][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if m[col][col] == 0:
            return None
        for row in range(3):
            if row != col:
                factor = m[row][col] / m[col][col]
                m[row] = [a - factor * b for a, b in zip(m[row], m[col])]
    return tuple(m[i][3] / m[i][i] for i in range(3))


def slope(points):
    """Least-squares slope of log(y) against log(x)."""
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return float("nan")
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def panel(series, title, unit, left, top, width, height):
    """Returns SVG elements for one log-log panel."""
    points = [(x, y) for line in series.values() for x, y in line.items() if y > 0]
    if not points:
        return []
    lo_x, hi_x = min(x for x, _ in points), max(x for x, _ in points)
    lo_y, hi_y = min(y for _, y in points), max(y for _, y in points)
    lo_y, hi_y = lo_y / 2, hi_y * 2
    hi_x = hi_x if hi_x > lo_x else lo_x * 2

    def place(x, y):
        px = left + (math.log(x) - math.log(lo_x)) / (math.log(hi_x) - math.log(lo_x)) * width
        py = top + height - (math.log(y) - math.log(lo_y)) / (math.log(hi_y) - math.log(lo_y)) * height
        return px, py

    parts = [
        f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#999"/>',
        f'<text x="{left + width / 2}" y="{top - 10}" text-anchor="middle" font-size="14">{title}</text>',
        f'<text x="{left + width / 2}" y="{top + height + 36}" text-anchor="middle" font-size="12">disk size N (blocks of 4 KiB, log scale)</text>',
        f'<text x="{left - 48}" y="{top + height / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 {left - 48} {top + height / 2})">{unit} (log scale)</text>',
    ]
    for blocks in sorted({x for x, _ in points}):
        px, _ = place(blocks, lo_y)
        parts.append(f'<text x="{px}" y="{top + height + 16}" text-anchor="middle" font-size="10">2^{int(math.log2(blocks))}</text>')
    decade = 10 ** math.floor(math.log10(lo_y))
    while decade <= hi_y:
        if decade >= lo_y:
            _, py = place(lo_x, decade)
            parts.append(f'<line x1="{left}" x2="{left + width}" y1="{py}" y2="{py}" stroke="#eee"/>')
            parts.append(f'<text x="{left - 4}" y="{py + 3}" text-anchor="end" font-size="10">{decade:g}</text>')
        decade *= 10
    for row, (label, line) in enumerate(sorted(series.items(), key=lambda item: LABELS.index(item[0]))):
        coords = [place(x, y) for x, y in sorted(line.items()) if y > 0]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        color = COLORS[label]
        dash = ' stroke-dasharray="6 4"' if label.startswith("scattered") else ""
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for x, y in coords:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
        fitted = slope(sorted(line.items())) if len(line) > 1 else float("nan")
        parts.append(f'<text x="{left + 8}" y="{top + 16 + 14 * row}" font-size="11" fill="{color}">{label}: slope {fitted:.2f}</text>')
    return parts


def print_slopes(name, series):
    """Prints the log-log slope against N of each line of `series` that has
    two or more points."""
    for label in LABELS:
        line = series.get(label, {})
        if len(line) > 1:
            print(f"{name} {label}: log-log slope {slope(sorted(line.items())):.3f} over N = {sorted(line)}")


def write_svg(svg_path, elements):
    """Writes the panels' SVG `elements` to `svg_path` as one picture."""
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="1020" height="400" font-family="sans-serif">'
        '<rect width="100%" height="100%" fill="white"/>' + "".join(elements) + "</svg>\n"
    )
    pathlib.Path(svg_path).write_text(svg)
    print(f"wrote {svg_path}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    log_path, svg_path = sys.argv[1], sys.argv[2]
    writes, cases = metadata_writes(log_path)
    times = criterion_times(
        "delete_middle", [(label, blocks) for label, line in writes.items() for blocks in line]
    )
    if not times and not writes:
        sys.exit("no results found: run `cargo bench --bench delete_scaling | tee bench.log` first")

    print_slopes("time", times)
    print_slopes("metadata writes", writes)

    fitted = fit_linear(cases) if len(cases) >= 3 else None
    if fitted:
        a, b, c = fitted
        print(f"metadata writes ~= {a:.2f} * d + {b:.2f} * (N / 1024) + {c:.0f} over {len(cases)} cases")

    elements = panel(times, "delete of the middle snapshot: time", "seconds", 90, 40, 380, 300)
    elements += panel(writes, "delete of the middle snapshot: metadata writes", "writes", 600, 40, 380, 300)
    write_svg(svg_path, elements)


if __name__ == "__main__":
    main()
