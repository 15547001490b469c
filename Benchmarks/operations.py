#!/usr/bin/env python3
"""Measures the watcher's operational limits (not a test: it prints figures, asserts nothing).

  timeout precision    how late DEADLINE_EXCEEDED arrives after Info.Timeout / the caller's deadline
  refusal latency      how fast a call over MAX_INFLIGHT is refused
  soak                 resident memory of a watcher under steady h2load traffic, sampled over time

Usage: Benchmarks/operations.py [--binary .build/release/fxwatcher] [--soak-seconds 180]
Run through scripts/measure-operations.sh, which builds the release binary first.
Everything binds 127.0.0.1; every load is bounded in count and time.
"""

import argparse
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from grpc_tools import protoc

REPO = Path(__file__).resolve().parents[1]


def generated_modules(out):
    protoc.main(["protoc", f"-I{REPO / 'Protos'}", f"--python_out={out}", f"--grpc_python_out={out}",
                 str(REPO / "Protos" / "fxwatcher.proto")])
    sys.path.insert(0, str(out))
    import fxwatcher_pb2
    import fxwatcher_pb2_grpc
    return fxwatcher_pb2, fxwatcher_pb2_grpc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Watcher:
    def __init__(self, binary, env, workdir):
        self.port, self.mesh = free_port(), free_port()
        self.lock = Path(workdir) / f"lock-{self.port}"
        environment = {"PATH": os.environ["PATH"], "WATCHER_HOST": "127.0.0.1", "WATCHER_PORT": str(self.port),
                       "MESH_PORT": str(self.mesh), "LOCK_FILE": str(self.lock), **env}
        self.process = subprocess.Popen([binary], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.lock.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("watcher did not start")
            time.sleep(0.005)

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def percentiles(samples):
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return f"p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, max {ordered[-1]:.2f} ms (n={len(ordered)})"


def timeout_precision(binary, pb, rpc, workdir, count=200):
    watcher = Watcher(binary, {"HANDLER_NAME": "sleep"}, workdir)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
            stub = rpc.FxWatcherStub(channel)
            stub.Call(pb.Request(input=b"0:warm"), timeout=10)
            for label, info, deadline, expected in (
                ("Info.Timeout 50ms", pb.Info(Timeout="50ms"), 10, 0.050),
                ("caller deadline 50ms", pb.Info(), 0.050, 0.050),
            ):
                late = []
                for _ in range(count):
                    started = time.monotonic()
                    try:
                        stub.Call(pb.Request(input=b"10000", info=info), timeout=deadline)
                    except grpc.RpcError as error:
                        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error
                    late.append((time.monotonic() - started - expected) * 1000)
                print(f"timeout precision, {label}: DEADLINE_EXCEEDED {percentiles(late)} after the deadline")
    finally:
        watcher.stop()


def refusal_latency(binary, pb, rpc, workdir, count=500):
    watcher = Watcher(binary, {"HANDLER_NAME": "sleep", "MAX_INFLIGHT": "1"}, workdir)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
            stub = rpc.FxWatcherStub(channel)
            stub.Call(pb.Request(input=b"0:warm"), timeout=10)
            busy = stub.Call.future(pb.Request(input=b"60000"), timeout=120)
            time.sleep(0.3)
            took = []
            for _ in range(count):
                started = time.monotonic()
                try:
                    stub.Call(pb.Request(input=b"0:x"), timeout=10)
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
                took.append((time.monotonic() - started) * 1000)
            busy.cancel()
            print(f"over-limit refusal (MAX_INFLIGHT=1, client round trip): {percentiles(took)}")
    finally:
        watcher.stop()


def soak(binary, pb, workdir, seconds):
    watcher = Watcher(binary, {}, workdir)
    body = Path(workdir) / "soak-body"
    message = pb.Request(input=b"soak " * 20).SerializeToString()
    body.write_bytes(struct.pack(">BI", 0, len(message)) + message)
    samples = [(0, watcher.rss_kib())]
    stop = threading.Event()
    calls = [0]

    def load():
        while not stop.is_set():
            result = subprocess.run(
                ["h2load", "-n", "20000", "-c", "4", "-m", "8", "-d", str(body), "-H", "content-type: application/grpc",
                 "-H", "te: trailers", f"http://127.0.0.1:{watcher.port}/pb.FxWatcher/Call"],
                capture_output=True, text=True, timeout=300)
            done = re.search(r"(\d+) succeeded", result.stdout)
            calls[0] += int(done.group(1)) if done else 0

    loader = threading.Thread(target=load)
    started = time.monotonic()
    loader.start()
    try:
        while time.monotonic() - started < seconds:
            time.sleep(10)
            samples.append((round(time.monotonic() - started), watcher.rss_kib()))
    finally:
        stop.set()
        loader.join(timeout=300)
        watcher.stop()
    first_minute = [kib for t, kib in samples if 0 < t <= 60]
    print(f"soak: {calls[0]} calls in {seconds}s; RSS KiB over time: " + ", ".join(f"{t}s={kib}" for t, kib in samples))
    if first_minute:
        print(f"soak: RSS after the first minute {first_minute[-1]} KiB, at the end {samples[-1][1]} KiB, "
              f"max {max(k for _, k in samples)} KiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(REPO / ".build" / "release" / "fxwatcher"))
    parser.add_argument("--soak-seconds", type=int, default=180)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        pb, rpc = generated_modules(workdir)
        timeout_precision(args.binary, pb, rpc, workdir)
        refusal_latency(args.binary, pb, rpc, workdir)
        if args.soak_seconds > 0:
            soak(args.binary, pb, workdir, args.soak_seconds)


if __name__ == "__main__":
    main()
