#!/usr/bin/env python3
"""Write the markdown report of one run of run.sh from the files it left in WORK."""

import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

TOOL_LABELS = {
    "blocksnap": "blocksnap (full read)",
    "blocksnap-changed-blocks": "blocksnap `--changed-blocks`",
    "restic": "restic",
    "borg": "borg",
    "qcow2": "qcow2 internal snapshots (qemu-img)",
}

TOOL_METHODS = {
    "blocksnap": "default store (64 KiB blocks, no compression); every version is read in full.",
    "blocksnap-changed-blocks": "default store; v2..v6 read only the 64 KiB blocks listed by "
    "`changed_blocks.py`, which compares vN-1 and vN outside the timed commands.",
    "restic": "`restic backup vN.img --tag vN`; delete is `forget` + `prune` with default "
    "`--max-unused 5%`; restore is `restic restore`. Repository version and compression are "
    "restic's defaults.",
    "borg": "`borg create ::vN vN.img` with default lz4 compression. With borg's default "
    "chunker (buzhash, about 2 MiB chunks), a change of a few KiB stores its whole chunk again. "
    "Delete is `borg delete` + "
    "`borg compact` with its default threshold (10%); restore is `borg extract`.",
    "qcow2": "v1 is converted to qcow2 (64 KiB clusters) and snapshotted with `qemu-img snapshot "
    "-c`. For v2..v6, an empty overlay backed by vN.img is rebased onto the qcow2 (which writes "
    "into the overlay only the clusters that differ), committed into it, then snapshotted. "
    "Delete is `qemu-img snapshot -d v3`, whose freed clusters are discarded (holes punched). "
    "Restore is `qemu-img convert -l snapshot.name=v6 -O raw`.",
}


def read_tsv(path):
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.reader(handle, delimiter="\t"))


def command_output(*command):
    """Return the first line of a command's output, or a note that it failed."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        return f"not available ({error.strerror})"
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else f"no output (exit status {result.returncode})"


def directory_bytes(path):
    """Return the allocated bytes of a directory tree, as `du -sB1` counts them."""
    result = subprocess.run(["du", "-sB1", str(path)], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[0])


def mib(value):
    return f"{value / 2**20:.1f}"


def collect_times(work):
    """Read measurements.tsv into {tool: {phase: {version: seconds}}}, {tool: peak RSS KiB}
    and {tool: {phase: [(version, command)]}}."""
    times, peak_rss, commands = {}, {}, {}
    for tool, phase, version, start, end, rss, command in read_tsv(work / "measurements.tsv"):
        phases = times.setdefault(tool, {}).setdefault(phase, {})
        phases[int(version)] = phases.get(int(version), 0.0) + float(end) - float(start)
        peak_rss[tool] = max(peak_rss.get(tool, 0), int(rss))
        commands.setdefault(tool, {}).setdefault(phase, []).append((int(version), command))
    return times, peak_rss, commands


def machine_lines(work, args):
    memory_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    file_system = subprocess.run(["df", "--output=fstype,source", str(work)], capture_output=True,
                                 text=True, check=False).stdout.splitlines()[-1].split()
    loads = ", ".join(f"{tool} {load}" for tool, load in read_tsv(work / "loads.tsv"))
    return [
        f"- CPUs (`nproc`): {os.cpu_count()}; memory: {memory_kib / 2**20:.1f} GiB; "
        f"kernel: {platform.release()}",
        f"- work directory: `{work}` on {file_system[0]} ({file_system[1]})",
        f"- `uptime` at the start: `{(work / 'uptime-start.txt').read_text().strip()}`",
        f"- `uptime` at the end: `{(work / 'uptime-end.txt').read_text().strip()}`",
        f"- load averages (1, 5, 15 min) as each tool started: {loads}",
    ]


def version_lines(args):
    git = ["git", "-C", str(args.repo)]
    commit = command_output(*git, "rev-parse", "--short", "HEAD")
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                           capture_output=True, text=True, check=False).stdout.splitlines()
    tree = f"with {len(dirty)} uncommitted changed files under src/ or Cargo.*" if dirty else "clean"
    return [
        f"- blocksnap: {command_output(args.blocksnap, '--version')}, commit {commit}, work tree {tree}",
        f"- restic: {command_output('restic', 'version')}",
        f"- borg: {command_output('borg', '--version')} (encryption `{args.borg_encryption}`, "
        f"chunker params `{args.borg_chunker or 'default'}`)",
        f"- qemu-img: {command_output('qemu-img', '--version')}",
        f"- e2fsprogs: {command_output('mkfs.ext4', '-V')}",
    ]


def workload_lines(work):
    workload = json.loads((work / "workload.json").read_text())
    changed = {int(row[0]): (json.loads(row[3]), float(row[2]) - float(row[1]))
               for row in read_tsv(work / "changed.tsv")}
    lines = [
        f"- image: {workload['image_bytes'] / 2**20:.0f} MiB ext4 (4 KiB blocks), v1 made by "
        f"`mkfs.ext4 -d` from {workload['v1_files']} files ({mib(workload['v1_file_bytes'])} MiB) "
        f"under {', '.join(workload['source_roots'])}, taken in sorted order up to 60% of the image",
        f"- v2..v6: each a copy of the previous version changed with `debugfs -w` (seed "
        f"{workload['seed']}): files added with random bytes, files rewritten with a random window "
        "of up to 64 KiB replaced, files removed",
        "",
        "| version | changed 64 KiB blocks | changed fraction | added files (MiB) | rewritten files (MiB) | removed files (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for entry in workload["versions"][1:]:
        counts, _ = changed.get(entry["version"], ({"changed_blocks": 0, "total_blocks": 0}, 0))
        fraction = counts["changed_blocks"] / counts["total_blocks"] if counts["total_blocks"] else 0
        lines.append(
            f"| v{entry['version']} | {counts['changed_blocks']} of {counts['total_blocks']} | "
            f"{fraction:.1%} | {entry['added_files']} ({mib(entry['added_bytes'])}) | "
            f"{entry['edited_files']} ({mib(entry['edited_bytes'])}) | "
            f"{entry['removed_files']} ({mib(entry['removed_bytes'])}) |"
        )
    listing = sum(seconds for _, seconds in changed.values())
    lines += ["", f"Listing the changed blocks of v2..v6 with `changed_blocks.py` took {listing:.2f} s in "
              "total; that time is not in the blocksnap `--changed-blocks` row."]
    return lines


def results_table(work, tools):
    times, peak_rss, _ = collect_times(work)
    sizes = {row[0]: (int(row[1]), int(row[2])) for row in read_tsv(work / "sizes.tsv")}
    restores = {row[0]: row[1] == row[2] for row in read_tsv(work / "restores.tsv")}
    status = {row[0]: row for row in read_tsv(work / "status.tsv")}

    def seconds(tool, phase):
        values = times.get(tool, {}).get(phase)
        return f"{sum(values.values()):.2f}" if values else "—"

    lines = [
        "| tool | first snapshot (v1) s | incremental mean (v2..v6) s | delete v3 s | restore v6 s "
        "| restore verified | on disk before delete MiB | on disk after delete MiB | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | :---: | ---: | ---: | ---: |",
    ]
    notes = []
    for tool in tools:
        incremental = times.get(tool, {}).get("incremental", {})
        mean = f"{statistics.mean(incremental.values()):.2f}" if incremental else "—"
        verified = {True: "✓", False: "✗"}.get(restores.get(tool), "—")
        before, after = (mib(value) for value in sizes[tool]) if tool in sizes else ("—", "—")
        rss = f"{peak_rss[tool] / 1024:.1f}" if tool in peak_rss else "—"
        lines.append(
            f"| {TOOL_LABELS.get(tool, tool)} | {seconds(tool, 'first')} | {mean} | "
            f"{seconds(tool, 'delete')} | {seconds(tool, 'restore')} | {verified} | {before} | "
            f"{after} | {rss} |"
        )
        row = status.get(tool)
        if row and row[1] == "failed":
            notes.append(f"- {tool} failed in phase {row[2]}; cells after that phase are empty. "
                         f"Its log is `logs/{tool}.log` in the work directory.")
    return lines, notes


def detail_lines(work, tools):
    times, _, commands = collect_times(work)
    sizes = {row[0]: (int(row[1]), int(row[2])) for row in read_tsv(work / "sizes.tsv")}
    versions = sorted({v for tool in times.values() for v in tool.get("incremental", {})})
    lines = [
        "| tool | " + " | ".join(f"v{v} s" for v in versions) + " | on disk before delete B | on disk after delete B |",
        "| --- | " + " | ".join("---:" for _ in versions) + " | ---: | ---: |",
    ]
    for tool in tools:
        incremental = times.get(tool, {}).get("incremental", {})
        cells = [f"{incremental[v]:.2f}" if v in incremental else "—" for v in versions]
        before, after = sizes.get(tool, ("—", "—"))
        lines.append(f"| {TOOL_LABELS.get(tool, tool)} | " + " | ".join(cells) + f" | {before} | {after} |")
    caches = [f"{name} {mib(directory_bytes(work / 'cache' / name))} MiB"
              for name in ("restic", "borg") if (work / "cache" / name).exists()]
    if caches:
        lines += ["", f"Local caches, not counted above: {', '.join(caches)}."]
    lines += ["", "Commands timed for each tool (paths as in this run):", ""]
    for tool in tools:
        lines.append(f"- {TOOL_LABELS.get(tool, tool)}: {TOOL_METHODS.get(tool, '')}")
        for phase, phase_commands in commands.get(tool, {}).items():
            # The commands of the phase's first version stand for the later versions.
            first_version = min(version for version, _ in phase_commands)
            for version, command in phase_commands:
                if version == first_version:
                    lines.append(f"  - {phase} (v{version}): `{command}`")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("work", type=Path, help="work directory of the run")
    parser.add_argument("--output", type=Path, required=True, help="markdown file to write")
    parser.add_argument("--blocksnap", required=True, help="blocksnap binary that was measured")
    parser.add_argument("--repo", type=Path, required=True, help="blocksnap repository")
    parser.add_argument("--command", required=True, help="command line of the run")
    parser.add_argument("--start", type=float, required=True, help="run start, epoch seconds")
    parser.add_argument("--end", type=float, required=True, help="run end, epoch seconds")
    parser.add_argument("--borg-encryption", required=True, help="borg encryption mode used")
    parser.add_argument("--borg-chunker", default="", help="borg --chunker-params used, empty for the default")
    args = parser.parse_args()

    work = args.work
    tools = [row[0] for row in read_tsv(work / "status.tsv")]
    table, notes = results_table(work, tools)
    started = datetime.datetime.fromtimestamp(args.start, datetime.timezone.utc)
    lines = [
        "# blocksnap compared with restic, borg and qcow2 snapshots",
        "",
        f"Command: `{args.command}`, started {started:%Y-%m-%d %H:%M} UTC, total runtime "
        f"{args.end - args.start:.0f} s (workload, all tools and checks).",
        "",
        "## Machine",
        "",
        *machine_lines(work, args),
        "",
        "## Versions",
        "",
        *version_lines(args),
        "",
        "## Workload",
        "",
        *workload_lines(work),
        "",
        "## Results",
        "",
        "Times are wall seconds of the tool's own commands (summed where a step takes several). "
        "Each tool snapshots v1..v6 of one disk, deletes v3 and reclaims its space, then restores "
        "v6 and checks it against v6.img by sha256. On-disk sizes are `du -sB1` (allocated bytes) "
        "of the repository, store or qcow2 file, without tool caches; MiB is 2^20 bytes. Peak RSS "
        "is the largest `/usr/bin/time -f %M` over the tool's commands. The images were just written "
        "and fit in memory, so they are most likely read from the page cache.",
        "",
        *table,
        *([""] + notes if notes else []),
        "",
        "## Details",
        "",
        *detail_lines(work, tools),
        "",
    ]
    args.output.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
