#!/usr/bin/env python3
"""Write the indices of the fixed-size blocks that differ between two disk images.

The output file has one decimal index per line, the format that
`blocksnap create-disk-snapshot --changed-blocks` reads. A JSON line with the
counts goes to stdout. Both images must have the same size.
"""

import argparse
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="earlier image")
    parser.add_argument("new", help="later image")
    parser.add_argument("output", help="file to write the changed block indices to")
    parser.add_argument("--block-size", type=int, default=65536, help="block size in bytes (default 65536)")
    args = parser.parse_args()

    old_size, new_size = os.path.getsize(args.old), os.path.getsize(args.new)
    if old_size != new_size:
        sys.exit(f"changed_blocks: {args.old} has {old_size} bytes but {args.new} has {new_size}; "
                 "the images must have the same size")

    changed = []
    total = 0
    with open(args.old, "rb") as old, open(args.new, "rb") as new:
        while True:
            old_block = old.read(args.block_size)
            new_block = new.read(args.block_size)
            if not new_block:
                break
            if old_block != new_block:
                changed.append(total)
            total += 1

    with open(args.output, "w") as output:
        output.writelines(f"{index}\n" for index in changed)
    print(json.dumps({"changed_blocks": len(changed), "total_blocks": total, "block_size": args.block_size}))


if __name__ == "__main__":
    main()
