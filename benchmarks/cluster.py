#!/usr/bin/env python3
"""k-means (faiss, with a kMQ draw), the silhouette and the Vendi score against scikit-learn
and vendi-score: now a part of ``iterselect bench``; this runs
``iterselect bench --suite speed --kernels kmeans,silhouette,vendi ARGS``.

    python benchmarks/cluster.py --n 10000,100000,1000000 --out bench-cluster
"""
import sys

from iterselect.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--suite", "speed", "--kernels", "kmeans,silhouette,vendi", *sys.argv[1:]]))
