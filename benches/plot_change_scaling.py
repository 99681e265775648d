#!/usr/bin/env python3
"""Fit the slopes of the change-scaling benchmark and plot it.

Reads the CSV lines (``csv-change,layout,blocks,changed,
metadata_writes_of_create,source_bytes_read,blocks_listed``) that the bench
prints, and for the cases they name, criterion's mean times from the latest
run of each case under target/criterion/create_incremental/ and
target/criterion/list_changed_blocks/ of the repository. Prints a markdown
table of every case and the log-log slope against the disk size N of the
create time, the list time and the metadata writes. Writes an SVG with two
panels, the time of the incremental create and the time of the list against
N, with one line per change size d and layout.
A slope near 0 means the cost does not grow with N at a fixed d. A slope
near 1 means it grows in proportion to N.

Usage: cargo bench --bench change_scaling | tee change.log
       python3 benches/plot_change_scaling.py change.log docs/change-scaling.svg
"""

import pathlib
import sys

from plot_delete_scaling import LABELS, case_label, criterion_times, panel, print_slopes, write_svg


def change_cases(log_path):
    """Returns {(label, blocks): (changed, writes, bytes read, listed)}."""
    cases = {}
    for line in pathlib.Path(log_path).read_text().splitlines():
        parts = line.strip().split(",")
        if len(parts) != 7 or parts[0] != "csv-change" or not parts[2].isdigit():
            continue
        blocks, changed, writes, read, listed = (int(part) for part in parts[2:])
        label = case_label(parts[1], blocks, changed)
        if label is not None:
            cases[(label, blocks)] = (changed, writes, read, listed)
    return cases


def duration(series, label, blocks):
    """Formats the mean time of one case with three significant digits."""
    seconds = series.get(label, {}).get(blocks)
    if seconds is None:
        return ""
    if seconds >= 0.9995:
        return f"{seconds:.2f} s"
    milliseconds = seconds * 1e3
    if milliseconds >= 100:
        return f"{milliseconds:.0f} ms"
    if milliseconds >= 10:
        return f"{milliseconds:.1f} ms"
    return f"{milliseconds:.2f} ms"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    log_path, svg_path = sys.argv[1], sys.argv[2]
    cases = change_cases(log_path)
    if not cases:
        sys.exit("no results found: run `cargo bench --bench change_scaling | tee change.log` first")
    creates = criterion_times("create_incremental", cases)
    lists = criterion_times("list_changed_blocks", cases)
    writes = {}
    for (label, blocks), (_, count, _, _) in cases.items():
        writes.setdefault(label, {})[blocks] = count

    print("| N (blocks) | case | d (blocks) | create | metadata writes | source bytes read | list | blocks listed |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (label, blocks), (changed, count, read, listed) in sorted(
        cases.items(), key=lambda item: (item[0][1], LABELS.index(item[0][0]))
    ):
        print(
            f"| {blocks:,} | {label} | {changed:,} | {duration(creates, label, blocks)} | {count:,} "
            f"| {read:,} | {duration(lists, label, blocks)} | {listed:,} |"
        )

    print_slopes("create time", creates)
    print_slopes("list time", lists)
    print_slopes("create metadata writes", writes)

    elements = panel(creates, "incremental create with a changed-block list", "seconds", 90, 40, 380, 300)
    elements += panel(lists, "list_changed_blocks against the base", "seconds", 600, 40, 380, 300)
    write_svg(svg_path, elements)


if __name__ == "__main__":
    main()
