#!/usr/bin/env python3
"""Sentiment speed on the end-to-end test's generated sentences: TextBlob 0.20.1's calls/s
(in-process, no gRPC), the Swift handler's calls/s in-process (release handler-bench), and the
release fxwatcher's calls/s over gRPC (h2load on loopback). Prints all three and the ratios.

Usage: .build-venv/bin/python Benchmarks/sentiment.py
Build first: swift build -c release --product fxwatcher && swift build -c release --product handler-bench
"""

import argparse
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(REPO / ".build" / "release" / "fxwatcher"))
    parser.add_argument("--bench", default=str(REPO / ".build" / "release" / "handler-bench"))
    parser.add_argument("--calls-per-sentence", type=int, default=200)
    args = parser.parse_args()
    from test_sentiment import generated_sentences, original
    from grpc_tools import protoc

    corpus = generated_sentences()
    original(corpus[0])  # load the lexicon before timing
    started = time.perf_counter()
    rounds = 3
    for _ in range(rounds):
        for text in corpus:
            original(text)
    textblob_rate = rounds * len(corpus) / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as work:
        protoc.main(["protoc", f"-I{REPO / 'Protos'}", f"--python_out={work}", str(REPO / "Protos" / "fxwatcher.proto")])
        sys.path.insert(0, work)
        import fxwatcher_pb2 as pb

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        lock = Path(work) / "lock"
        watcher = subprocess.Popen([args.binary], env={
            "PATH": os.environ["PATH"], "WATCHER_HOST": "127.0.0.1", "WATCHER_PORT": str(port), "MESH_PORT": "0",
            "LOCK_FILE": str(lock), "HANDLER_NAME": "sentiment-analysis"}, stderr=subprocess.DEVNULL)
        try:
            while not lock.exists():
                time.sleep(0.01)
            calls, seconds = 0, 0.0
            body = Path(work) / "body"
            for text in corpus:
                message = pb.Request(input=text.encode()).SerializeToString()
                body.write_bytes(struct.pack(">BI", 0, len(message)) + message)
                result = subprocess.run(
                    ["h2load", "-n", str(args.calls_per_sentence), "-c", "2", "-m", "8", "-d", str(body),
                     "-H", "content-type: application/grpc", "-H", "te: trailers",
                     f"http://127.0.0.1:{port}/pb.FxWatcher/Call"], capture_output=True, text=True, timeout=120)
                finished = re.search(r"finished in ([\d.]+)(m?s)", result.stdout)
                succeeded = int(re.search(r"(\d+) succeeded", result.stdout).group(1))
                seconds += float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
                calls += succeeded
            swift_rate = calls / seconds
        finally:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(timeout=30)

        corpus_path = Path(work) / "corpus"
        corpus_path.write_bytes(b"".join(struct.pack(">I", len(t.encode())) + t.encode() for t in corpus))
        bench = subprocess.run([args.bench, "sentiment-analysis", str(corpus_path), "200"], capture_output=True,
                               text=True, check=True, timeout=300).stdout
        in_process_rate = int(re.search(r"= (\d+) calls/s", bench).group(1))

    print(f"corpus: {len(corpus)} sentences")
    print(f"TextBlob 0.20.1 in-process (CPython {sys.version.split()[0]}): {textblob_rate:,.0f} calls/s")
    print(f"Swift sentiment-analysis in-process (handler-bench): {in_process_rate:,.0f} calls/s "
          f"= {in_process_rate / textblob_rate:.1f}x TextBlob")
    print(f"fxwatcher sentiment-analysis over gRPC (h2load, 2 connections x 8 streams): {swift_rate:,.0f} calls/s "
          f"= {swift_rate / textblob_rate:.1f}x TextBlob")


if __name__ == "__main__":
    main()
