#!/usr/bin/env python3
"""imgprocessing speed on a 640×480 frame, camera-like (little noise, ~40 KB) and noisy (~220 KB,
where Huffman coding dominates): python-cv2's decode + operation + JPEG encode
in-process (as the seed's handler does it), against the release `fximage bench`, which times
the `imgprocessing` handler itself, in-process. Prints mean and best milliseconds
per frame for `reencode` (the seed's function) and `gray`, and the ratio Swift / cv2.

Usage: .build-venv/bin/python Benchmarks/imgprocessing.py [--rounds 300]
Build first: swift build -c release --product fximage
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))
from test_imgprocessing import natural  # noqa: E402  the test's picture generator


def time_cv2(data, operation, rounds):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if operation == "gray":
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        cv2.imencode(".jpg", frame)[1].tobytes()
        times.append(time.perf_counter() - start)
    return 1000 * sum(times) / len(times), 1000 * min(times)


def time_swift(tool, path, operation, rounds):
    result = subprocess.run([tool, "bench", str(path), "--op", operation, "--rounds", str(rounds)],
                            capture_output=True, text=True, check=True)
    words = result.stdout.split()
    return float(words[words.index("mean") + 1]), float(words[words.index("best") + 1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", default=str(REPO / ".build" / "release" / "fximage"))
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    noisy = natural(np.random.default_rng(640480), 480, 640)
    camera = cv2.GaussianBlur(noisy, (0, 0), 2)
    print(f"640x480 frames, {args.rounds} rounds, ms per frame (mean / best)")
    with tempfile.TemporaryDirectory() as folder:
        for kind, frame in (("camera-like", camera), ("noisy", noisy)):
            data = cv2.imencode(".jpg", frame)[1].tobytes()
            path = Path(folder) / f"{kind}.jpg"
            path.write_bytes(data)
            for operation in ("reencode", "gray"):
                cv_mean, cv_best = time_cv2(data, operation, args.rounds)
                swift_mean, swift_best = time_swift(args.tool, path, operation, args.rounds)
                print(f"{kind:11} {len(data):7} B  {operation:9} cv2 {cv_mean:.3f} / {cv_best:.3f}   "
                      f"Swift {swift_mean:.3f} / {swift_best:.3f}   Swift/cv2 {swift_mean / cv_mean:.2f}x")


if __name__ == "__main__":
    main()
