#!/usr/bin/env bash
# Measures the CLI-level figures of docs/benchmarks.md in one run, so their
# ratios share the same machine state:
#   - a full, durable snapshot of a page-cached image of fresh data, against
#     `cp` of the same file followed by `sync`;
#   - a re-snapshot of the unchanged image, against `b3sum --num-threads 2`;
#   - a restore to a file (synced), against `cp` + `sync`;
#   - the delete of a snapshot whose blocks are all unique (blocks freed per s);
#   - peak RSS of create and restore of a 16 GiB sparse image;
#   - bytes on disk against bytes of referenced blocks after deletes, in a
#     store of its own, because sled's log keeps the size it once reached and
#     a store that held the 1 GiB image would mostly measure that history;
#   - the same after 20 more versions, keeping the last 3, to show whether
#     metadata grows with the number of operations.
# Usage: benches/cli_figures.sh [WORK_DIR]   (image size: FIGURES_IMAGE_MB, default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."

work="${1:-/tmp/blocksnap-figures}"
image_mb="${FIGURES_IMAGE_MB:-1024}"
if ! command -v b3sum >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q b3sum
fi
[ -x /usr/bin/time ] || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time; }
cargo build --release --locked --quiet
# The target directory as cargo reports it, which follows CARGO_TARGET_DIR
# and build.target-dir.
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
rm -rf "$work" && mkdir -p "$work"
cp "$target_dir/release/blocksnap" "$work/blocksnap"
blocksnap="$work/blocksnap"
export BLOCKSNAP_STORE="$work/store"

# Wall-clock seconds of a command, from bash's microsecond clock.
seconds() {
  local start=$EPOCHREALTIME
  "$@" >/dev/null
  python3 -c "print(f'{$EPOCHREALTIME - $start:.3f}')"
}
rss_mib() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1 | awk '{printf "%.1f", $1 / 1024}'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

python3 -c "import os, sys; sys.stdout.buffer.write(os.urandom($image_mb << 20))" >"$work/image.bin"
cat "$work/image.bin" >/dev/null   # into the page cache

cp_sync=$(seconds bash -c "cp '$work/image.bin' '$work/copy.bin' && sync")
rm -f "$work/copy.bin"
create=$(seconds bash -c "'$blocksnap' create-disk-snapshot --disk-name bench-disk --disk-snapshot-name full --source '$work/image.bin'")
b3=$(seconds b3sum --num-threads 2 "$work/image.bin")
again=$(seconds "$blocksnap" create-disk-snapshot --disk-name bench-disk --disk-snapshot-name again --source "$work/image.bin")
restore_cp=$(seconds bash -c "cp '$work/image.bin' '$work/copy.bin' && sync")
rm -f "$work/copy.bin"
restore=$(seconds "$blocksnap" create-disk-from-snapshot --disk-snapshot-name again --disk-name restored --target "$work/restored.bin")
cmp -s "$work/image.bin" "$work/restored.bin" || { echo "restored image differs" >&2; exit 1; }
rm -f "$work/restored.bin"
"$blocksnap" delete-disk-snapshot --disk-snapshot-name again >/dev/null
blocks=$("$blocksnap" stats | python3 -c "import json,sys; print(json.load(sys.stdin)['blocks'])")
delete=$(seconds "$blocksnap" delete-disk-snapshot --disk-snapshot-name full)
rm -f "$work/image.bin"

# Space: three snapshots of an evolving image, then delete the middle one.
# Each version changes about 5% of the 64 KiB blocks of the image in place.
change_image() {
  python3 - "$work/space.bin" "$1" <<'PY'
import os, random, sys
rng = random.Random(7 + int(sys.argv[2]))
with open(sys.argv[1], "r+b") as image:
    for _ in range(200):
        image.seek(rng.randrange((256 << 20) >> 16) << 16)
        image.write(os.urandom(65536))
PY
}
space_snapshot() {
  "$blocksnap" create-disk-snapshot --disk-name space-disk --disk-snapshot-name "v$1" --source "$work/space.bin" >/dev/null
  change_image "$1"
}
export BLOCKSNAP_STORE="$work/space-store"
head -c $((256 << 20)) /dev/urandom >"$work/space.bin"
for version in 0 1 2; do space_snapshot "$version"; done
"$blocksnap" delete-disk-snapshot --disk-snapshot-name v1 >/dev/null
space=$("$blocksnap" stats)
for version in $(seq 3 22); do
  space_snapshot "$version"
  if [ "$version" -ne 4 ]; then  # v1 is deleted already
    "$blocksnap" delete-disk-snapshot --disk-snapshot-name "v$((version - 3))" >/dev/null
  fi
done
space_rolling=$("$blocksnap" stats)
rm -f "$work/space.bin"
export BLOCKSNAP_STORE="$work/store"

# Memory: a 16 GiB sparse image with a few data blocks.
truncate -s 16G "$work/sparse.img"
for offset_mb in 1 4096 9000 16000; do
  head -c 65536 /dev/urandom | dd of="$work/sparse.img" bs=1M seek="$offset_mb" conv=notrunc status=none
done
create_rss=$(rss_mib "$blocksnap" create-disk-snapshot --disk-name sparse-disk --disk-snapshot-name sparse --source "$work/sparse.img")
restore_rss=$(rss_mib "$blocksnap" create-disk-from-snapshot --disk-snapshot-name sparse --disk-name sparse-copy --target "$work/sparse-copy.img")
cmp -s "$work/sparse.img" "$work/sparse-copy.img" || { echo "restored sparse image differs" >&2; exit 1; }
rm -f "$work/sparse.img" "$work/sparse-copy.img"

python3 - "$space" "$space_rolling" <<PY
import json, sys
space = json.loads(sys.argv[1])
meta = space["diskBytes"] - space["storedBytes"]
rolling = json.loads(sys.argv[2])
rolling_meta = rolling["diskBytes"] - rolling["storedBytes"]
print(f"""| figure | blocksnap | reference | ratio |
| --- | ---: | ---: | ---: |
| full durable snapshot of {$image_mb} MiB (page-cached) | {$create} s | cp + sync {$cp_sync} s | {$create / $cp_sync:.2f} |
| re-snapshot of the unchanged image | {$again} s | b3sum --num-threads 2 {$b3} s | {$again / $b3:.2f} |
| restore to a file (synced) | {$restore} s | cp + sync {$restore_cp} s | {$restore / $restore_cp:.2f} |
| delete of {$blocks} unique 64 KiB blocks | {$delete} s | | {$blocks / $delete:,.0f} blocks/s |
| peak RSS, create of a 16 GiB sparse image | {$create_rss} MiB | | |
| peak RSS, restore of that image | {$restore_rss} MiB | | |
| bytes on disk after deleting the middle of 3 versions (256 MiB, ~5% change) | {space['diskBytes']:,} | referenced blocks {space['storedBytes']:,} | {space['diskBytes'] / space['storedBytes']:.3f} |
| metadata bytes (disk minus referenced blocks) | {meta:,} | | {meta / space['storedBytes']:.2%} of stored |
| metadata bytes after 20 more versions, keeping the last 3 | {rolling_meta:,} | referenced blocks {rolling['storedBytes']:,} | {rolling_meta / rolling['storedBytes']:.2%} of stored |""")
PY
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r), $(stat -f -c %T "$work"); load: $(cut -d' ' -f1-3 /proc/loadavg)"
