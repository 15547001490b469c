#!/usr/bin/env python3
"""imgprocessing speed on a 640×480 frame, camera-like (little noise, ~40 KB) and noisy (~220 KB,
where Huffman coding dominates): python-cv2's decode + operation + JPEG encode
in-process (as the seed's handler does it), against the release `fximage bench`, which times
the `imgprocessing` handler itself, in-process. Prints mean, median and best milliseconds per
frame and the CPU milliseconds per frame (every thread) for `reencode` (the seed's function) and
`gray`, and the ratios Swift / cv2. The gray operation decodes and encodes a frame at the same
time on two threads, so its CPU time exceeds its wall time.

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
    cpu = time.process_time()
    for _ in range(rounds):
        start = time.perf_counter()
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if operation == "gray":
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        cv2.imencode(".jpg", frame)[1].tobytes()
        times.append(time.perf_counter() - start)
    cpu = 1000 * (time.process_time() - cpu) / rounds
    times.sort()
    return 1000 * sum(times) / len(times), 1000 * times[len(times) // 2], 1000 * times[0], cpu


def time_swift(tool, path, operation, rounds):
    result = subprocess.run([tool, "bench", str(path), "--op", operation, "--rounds", str(rounds)],
                            capture_output=True, text=True, check=True)
    words = result.stdout.replace(",", "").split()
    return tuple(float(words[words.index(name) + 1]) for name in ("mean", "median", "best", "cpu"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", default=str(REPO / ".build" / "release" / "fximage"))
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    noisy = natural(np.random.default_rng(640480), 480, 640)
    camera = cv2.GaussianBlur(noisy, (0, 0), 2)
    print(f"640x480 frames, {args.rounds} rounds, ms per frame: mean / median / best, and CPU ms per frame")
    with tempfile.TemporaryDirectory() as folder:
        for kind, frame in (("camera-like", camera), ("noisy", noisy)):
            data = cv2.imencode(".jpg", frame)[1].tobytes()
            path = Path(folder) / f"{kind}.jpg"
            path.write_bytes(data)
            for operation in ("reencode", "gray"):
                cv = time_cv2(data, operation, args.rounds)
                swift = time_swift(args.tool, path, operation, args.rounds)
                print(f"{kind:11} {len(data):7} B  {operation:8} cv2 {cv[0]:.3f} / {cv[1]:.3f} / {cv[2]:.3f} cpu {cv[3]:.3f}"
                      f"   Swift {swift[0]:.3f} / {swift[1]:.3f} / {swift[2]:.3f} cpu {swift[3]:.3f}"
                      f"   Swift/cv2 mean {swift[0] / cv[0]:.2f}x median {swift[1] / cv[1]:.2f}x cpu {swift[3] / cv[3]:.2f}x")

if __name__ == "__main__":
    main()
