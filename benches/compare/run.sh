#!/usr/bin/env bash
# Compares blocksnap with restic, borg and qcow2 internal snapshots on one workload.
#
# Usage: benches/compare/run.sh [WORK_DIR]     (default WORK_DIR: /tmp/blocksnap-compare)
#
# Environment:
#   COMPARE_IMAGE_MB         size of the ext4 image in MiB (default 512)
#   COMPARE_SEED             seed for the workload's random choices and bytes (default 1)
#   COMPARE_TOOLS            rows to run, in order (default: all five, as below)
#   COMPARE_BORG_ENCRYPTION  borg init --encryption mode (default none)
#   COMPARE_BORG_CHUNKER     borg create --chunker-params value, such as fixed,65536
#                            (default: borg's own, buzhash with about 2 MiB chunks)
#   BLOCKSNAP_BIN            blocksnap binary to test; without it the script runs
#                            `cargo build --release --locked` and uses the release
#                            binary in cargo's target directory
#
# The workload is an ext4 image filled to about 60% with files from this machine
# (v1) and five later versions (v2..v6), each changing a few percent of the image
# through debugfs (see workload.py). Each tool snapshots v1..v6 in order, deletes
# v3 and reclaims its space, and restores v6, which is checked by sha256. Every
# tool command runs under /usr/bin/time for its wall time and peak RSS. The
# results go to benches/compare/results.md and to standard output. WORK_DIR is
# deleted and rebuilt on every run, so it must be empty, missing, or left by an
# earlier run of this script.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(realpath -m "${1:-/tmp/blocksnap-compare}")
image_mb=${COMPARE_IMAGE_MB:-512}
seed=${COMPARE_SEED:-1}
tools=${COMPARE_TOOLS:-blocksnap blocksnap-changed-blocks restic borg qcow2}
borg_encryption=${COMPARE_BORG_ENCRYPTION:-none}
borg_chunker=${COMPARE_BORG_CHUNKER:-}
versions=6
block_size=65536
export PATH="$PATH:/sbin:/usr/sbin"

command_line=""
for name in COMPARE_IMAGE_MB COMPARE_SEED COMPARE_TOOLS COMPARE_BORG_ENCRYPTION COMPARE_BORG_CHUNKER BLOCKSNAP_BIN; do
  value=${!name:-}
  if [ -n "$value" ]; then
    command_line+="$name=${value@Q} "
  fi
done
command_line+="benches/compare/run.sh${*:+ ${*@Q}}"
run_start=$EPOCHREALTIME

step() { printf '\n== %s\n' "$*" >&2; }

install_missing_packages() {
  local missing=()
  command -v restic >/dev/null || missing+=(restic)
  command -v borg >/dev/null || missing+=(borgbackup)
  command -v qemu-img >/dev/null || missing+=(qemu-utils)
  if ! command -v mkfs.ext4 >/dev/null || ! command -v debugfs >/dev/null || ! command -v e2fsck >/dev/null; then
    missing+=(e2fsprogs)
  fi
  [ -x /usr/bin/time ] || missing+=(time)
  if [ "${#missing[@]}" -gt 0 ]; then
    step "Installing ${missing[*]} with apt-get"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  fi
}

prepare_work_dir() {
  local marker="$work/.blocksnap-compare"
  if [ -e "$work" ] && [ ! -e "$marker" ] && [ -n "$(ls -A "$work")" ]; then
    echo "run.sh: work directory $work is not empty and was not made by this script. Pass an empty or new directory" >&2
    exit 2
  fi
  rm -rf "$work"
  mkdir -p "$work"/{bin,logs,repos,restore,changed,cache}
  touch "$marker" "$work"/{measurements,sizes,restores,status,loads,changed}.tsv
}

prepare_blocksnap() {
  local source
  if [ -n "${BLOCKSNAP_BIN:-}" ]; then
    source=$BLOCKSNAP_BIN
  else
    step "Building blocksnap"
    (cd "$repo" && cargo build --release --locked --quiet)
    # The target directory as cargo reports it, which follows CARGO_TARGET_DIR
    # and build.target-dir.
    source="$(cd "$repo" && cargo metadata --format-version 1 --no-deps --locked |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/blocksnap"
  fi
  # A private copy, so that a rebuild of target/ during the run cannot swap the binary.
  cp "$source" "$work/bin/blocksnap"
  blocksnap="$work/bin/blocksnap"
}

# measure TOOL PHASE VERSION COMMAND...
# Runs COMMAND under /usr/bin/time and appends a row to measurements.tsv: tool,
# phase, version, start and end (epoch seconds), peak RSS in KiB, command.
# Output of COMMAND goes to logs/TOOL.log. Returns COMMAND's exit status.
measure() {
  local tool=$1 phase=$2 version=$3
  shift 3
  local rss_file="$work/logs/rss.tmp" start end status=0
  printf '%s\t%s\t%s\n' "$tool" "$phase" "$version" >"$work/logs/current-phase"
  printf '+ %s\n' "$*" >>"$work/logs/$tool.log"
  start=$EPOCHREALTIME
  /usr/bin/time -f %M -o "$rss_file" "$@" >>"$work/logs/$tool.log" 2>&1 || status=$?
  end=$EPOCHREALTIME
  if [ "$status" -ne 0 ]; then
    printf 'exit status %s\n' "$status" >>"$work/logs/$tool.log"
    return "$status"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$phase" "$version" "$start" "$end" \
    "$(tail -n 1 "$rss_file")" "$*" >>"$work/measurements.tsv"
}

bytes_on_disk() { du -sB1 "$1" | cut -f1; }

record_size() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$work/sizes.tsv"; }

# record_restore TOOL FILE: compares FILE with v6.img by sha256, records the result, deletes FILE.
record_restore() {
  local tool=$1 file=$2 expected actual
  expected=$(sha256sum <"$images/v$versions.img" | cut -d' ' -f1)
  actual=$(sha256sum <"$file" | cut -d' ' -f1)
  printf '%s\t%s\t%s\n' "$tool" "$expected" "$actual" >>"$work/restores.tsv"
  rm -f "$file"
  if [ "$expected" != "$actual" ]; then
    echo "run.sh: $tool restored v$versions with sha256 $actual, expected $expected" >&2
  fi
}

# bench_blocksnap TOOL USE_CHANGED_BLOCKS: the default store (64 KiB blocks); with
# USE_CHANGED_BLOCKS=1, v2..v6 read only the blocks listed in changed/vN.txt.
bench_blocksnap() {
  local tool=$1 use_changed_blocks=$2 store="$work/repos/$1" n
  local cli=("$blocksnap" --store "$store")
  measure "$tool" first 1 "${cli[@]}" create-disk-snapshot --disk-name disk \
    --disk-snapshot-name v1 --source "$images/v1.img"
  for ((n = 2; n <= versions; n++)); do
    local changed=()
    if [ "$use_changed_blocks" = 1 ]; then
      changed=(--changed-blocks "$work/changed/v$n.txt")
    fi
    measure "$tool" incremental "$n" "${cli[@]}" create-disk-snapshot --disk-name disk \
      --disk-snapshot-name "v$n" --source "$images/v$n.img" "${changed[@]}"
  done
  local before after
  before=$(bytes_on_disk "$store")
  measure "$tool" delete 3 "${cli[@]}" delete-disk-snapshot --disk-snapshot-name v3
  after=$(bytes_on_disk "$store")
  record_size "$tool" "$before" "$after"
  measure "$tool" restore "$versions" "${cli[@]}" create-disk-from-snapshot \
    --disk-snapshot-name "v$versions" --disk-name restored --target "$work/restore/$tool.img"
  record_restore "$tool" "$work/restore/$tool.img"
  # Not timed: a full consistency check of the store after the delete.
  "${cli[@]}" verify >>"$work/logs/$tool.log"
}

restic_snapshot_id() {
  restic snapshots --tag "$1" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])'
}

# restic backs up each image file; the repository keeps its default settings
# (compression auto in repository version 2) and the cache lives under cache/.
bench_restic() {
  export RESTIC_REPOSITORY="$work/repos/restic" RESTIC_PASSWORD=compare-benchmark
  export RESTIC_CACHE_DIR="$work/cache/restic"
  restic init >>"$work/logs/restic.log"
  cd "$images"
  measure restic first 1 restic backup --host compare --tag v1 v1.img
  for ((n = 2; n <= versions; n++)); do
    measure restic incremental "$n" restic backup --host compare --tag "v$n" "v$n.img"
  done
  local before after id
  before=$(bytes_on_disk "$RESTIC_REPOSITORY")
  id=$(restic_snapshot_id v3)
  measure restic delete 3 restic forget "$id"
  measure restic delete 3 restic prune
  after=$(bytes_on_disk "$RESTIC_REPOSITORY")
  record_size restic "$before" "$after"
  id=$(restic_snapshot_id "v$versions")
  measure restic restore "$versions" restic restore "$id" --target "$work/restore/restic"
  # Where restic puts the file under --target depends on its version, so look it up.
  record_restore restic "$(find "$work/restore/restic" -type f -name "v$versions.img" | head -n 1)"
  restic check >>"$work/logs/restic.log" 2>&1
}

# borg archives each image file with lz4 compression and, unless
# COMPARE_BORG_CHUNKER is set, its default buzhash chunker.
bench_borg() {
  local create=(borg create)
  if [ -n "$borg_chunker" ]; then
    create+=(--chunker-params "$borg_chunker")
  fi
  export BORG_REPO="$work/repos/borg" BORG_PASSPHRASE=compare-benchmark
  export BORG_BASE_DIR="$work/cache/borg" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
  borg init --encryption "$borg_encryption" >>"$work/logs/borg.log" 2>&1
  cd "$images"
  measure borg first 1 "${create[@]}" ::v1 v1.img
  for ((n = 2; n <= versions; n++)); do
    measure borg incremental "$n" "${create[@]}" "::v$n" "v$n.img"
  done
  local before after
  before=$(bytes_on_disk "$BORG_REPO")
  measure borg delete 3 borg delete ::v3
  measure borg delete 3 borg compact
  after=$(bytes_on_disk "$BORG_REPO")
  record_size borg "$before" "$after"
  mkdir -p "$work/restore/borg"
  cd "$work/restore/borg"
  measure borg restore "$versions" borg extract "::v$versions"
  record_restore borg "$work/restore/borg/v$versions.img"
  borg check >>"$work/logs/borg.log" 2>&1
}

# qcow2 keeps one image with internal snapshots, and v1 is converted into it.
# For each later version, an empty overlay backed by vN.img is rebased onto the
# qcow2. The rebase copies into the overlay only the clusters where vN differs
# from the qcow2's current state. The overlay is then committed into the qcow2,
# and the qcow2 is snapshotted. So only changed 64 KiB clusters are written, as
# when a guest writes to the disk.
bench_qcow2() {
  local dir="$work/repos/qcow2"
  local disk="$dir/disk.qcow2" overlay="$work/cache/overlay.qcow2" n
  mkdir -p "$dir"
  measure qcow2 first 1 qemu-img convert -O qcow2 "$images/v1.img" "$disk"
  measure qcow2 first 1 qemu-img snapshot -c v1 "$disk"
  for ((n = 2; n <= versions; n++)); do
    measure qcow2 incremental "$n" qemu-img create -q -f qcow2 -b "$images/v$n.img" -F raw "$overlay"
    measure qcow2 incremental "$n" qemu-img rebase -b "$disk" -F qcow2 "$overlay"
    measure qcow2 incremental "$n" qemu-img commit -d "$overlay"
    measure qcow2 incremental "$n" qemu-img snapshot -c "v$n" "$disk"
    rm -f "$overlay"
  done
  local before after
  before=$(bytes_on_disk "$dir")
  measure qcow2 delete 3 qemu-img snapshot -d v3 "$disk"
  after=$(bytes_on_disk "$dir")
  record_size qcow2 "$before" "$after"
  measure qcow2 restore "$versions" qemu-img convert -l "snapshot.name=v$versions" -O raw \
    "$disk" "$work/restore/qcow2.img"
  record_restore qcow2 "$work/restore/qcow2.img"
  qemu-img check "$disk" >>"$work/logs/qcow2.log" 2>&1
}

run_tool() {
  local tool=$1 status=0
  step "Running $tool"
  printf '%s\t%s\n' "$tool" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/loads.tsv"
  # -e is switched off in this shell only, so that a failing tool ends its own
  # subshell (where -e is on again) and the other tools still run.
  set +e
  (
    set -e
    case "$tool" in
      blocksnap) bench_blocksnap blocksnap 0 ;;
      blocksnap-changed-blocks) bench_blocksnap blocksnap-changed-blocks 1 ;;
      restic) bench_restic ;;
      borg) bench_borg ;;
      qcow2) bench_qcow2 ;;
      *) echo "run.sh: unknown tool $tool in COMPARE_TOOLS" >&2; exit 2 ;;
    esac
  )
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    printf '%s\tfailed\t%s\n' "$tool" "$(cut -f2,3 "$work/logs/current-phase" | tr '\t' ' ')" >>"$work/status.tsv"
    echo "run.sh: $tool failed (exit status $status); see $work/logs/$tool.log" >&2
    tail -n 5 "$work/logs/$tool.log" >&2 || true
  else
    printf '%s\tok\t\n' "$tool" >>"$work/status.tsv"
  fi
}

install_missing_packages
prepare_work_dir
prepare_blocksnap
images="$work/images"

step "Building the workload: a ${image_mb} MiB ext4 image and $versions versions"
uptime >"$work/uptime-start.txt"
python3 "$here/workload.py" "$work" --image-mb "$image_mb" --versions "$versions" --seed "$seed"

step "Listing the changed ${block_size}-byte blocks of each version"
for ((n = 2; n <= versions; n++)); do
  start=$EPOCHREALTIME
  counts=$(python3 "$here/changed_blocks.py" --block-size "$block_size" \
    "$images/v$((n - 1)).img" "$images/v$n.img" "$work/changed/v$n.txt")
  end=$EPOCHREALTIME
  printf '%s\t%s\t%s\t%s\n' "$n" "$start" "$end" "$counts" >>"$work/changed.tsv"
done

for tool in $tools; do
  run_tool "$tool"
done
uptime >"$work/uptime-end.txt"

step "Writing $here/results.md"
python3 "$here/report.py" "$work" --output "$here/results.md" --blocksnap "$blocksnap" \
  --repo "$repo" --command "$command_line" --start "$run_start" --end "$EPOCHREALTIME" \
  --borg-encryption "$borg_encryption" --borg-chunker "$borg_chunker"
cp "$here/results.md" "$work/results.md"
cat "$here/results.md"

if grep -q $'\tfailed\t' "$work/status.tsv" || awk -F'\t' '$2 != $3 { bad = 1 } END { exit !bad }' "$work/restores.tsv"; then
  exit 1
fi
