#!/usr/bin/env python3
"""Time the file system's own cost of freeing a synced file.

For each directory given, writes a file of fresh random bytes and syncs it.
The default size, 1 GiB, is what the gc_throughput bench deletes. It then times
ftruncate(0) + fsync, once with the file's pages still cached, as they are
right after a create, and once after evicting them with posix_fadvise, as
they are when an old snapshot is deleted. That is what blocksnap does to a
pack left without live blocks, so it bounds the garbage-collection
throughput. Prints the median of the rounds in milliseconds and in 64 KiB
blocks per second.

Usage: python3 benches/fs_free_reference.py DIR [DIR ...]
Environment: FS_REFERENCE_MIB (default 1024), FS_REFERENCE_ROUNDS (default 3).
"""

import os
import statistics
import sys
import time


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    size = int(os.environ.get("FS_REFERENCE_MIB", "1024")) << 20
    rounds = int(os.environ.get("FS_REFERENCE_ROUNDS", "3"))
    data = os.urandom(size)
    blocks = size // 65536
    for directory in sys.argv[1:]:
        for cache in ("cached", "evicted"):
            median = median_free_seconds(directory, data, rounds, cache == "evicted")
            print(f"{directory}: ftruncate + fsync of {size >> 20} MiB, pages {cache}: "
                  f"median {median * 1000:.0f} ms ({blocks / median:,.0f} blocks of 64 KiB per second)")


def median_free_seconds(directory, data, rounds, evict):
    """Median time of ftruncate(0) + fsync of a synced file holding `data`."""
    path = os.path.join(directory, "blocksnap-fs-reference.bin")
    times = []
    for _ in range(rounds):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
            if evict:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            start = time.perf_counter()
            os.ftruncate(fd, 0)
            os.fsync(fd)
            times.append(time.perf_counter() - start)
        finally:
            os.close(fd)
            os.unlink(path)
    return statistics.median(times)

if __name__ == "__main__":
    main()
