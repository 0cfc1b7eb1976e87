#!/usr/bin/env python3
"""Facility location against apricot: now a part of ``iterselect bench`` (the dense objective
of both pick sets, and identical picks on a complete graph); this runs
``iterselect bench --suite speed --kernels facility ARGS``.

    python benchmarks/facility.py --n 2000,10000 --k 1000 --out bench-facility
"""
import sys

from iterselect.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--suite", "speed", "--kernels", "facility", *sys.argv[1:]]))
