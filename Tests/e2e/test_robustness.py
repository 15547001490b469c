"""End-to-end robustness: malformed traffic, storms of failures and SIGTERM under load, against
the real `fxwatcher`, with h2load (nghttp2-client) and Python grpcio clients on loopback.
Each load is bounded in count and time."""

import os
import random
import re
import shutil
import signal
import struct
import subprocess
import threading
import time

import grpc
import pytest

H2LOAD = shutil.which("h2load") or "h2load"  # nghttp2-client, installed by scripts/install-deps.sh


def frame(message, compressed=False, length=None):
    """One gRPC length-prefixed message; `length` may lie."""
    return struct.pack(">BI", 1 if compressed else 0, len(message) if length is None else length) + message


def resident_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))


def h2load(port, body_path, requests, path="/pb.FxWatcher/Call", headers=("content-type: application/grpc", "te: trailers"),
           clients=4, streams=16):
    """Sends `requests` POSTs with the same body (GETs with none when `body_path` is None); returns
    h2load's summary line. Bounded by a timeout."""
    command = [H2LOAD, "-n", str(requests), "-c", str(clients), "-m", str(streams), "-T", "20", "-N", "20"]
    if body_path is not None:
        command += ["-d", str(body_path)]
    for header in headers:
        command += ["-H", header]
    result = subprocess.run(command + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=120)
    summary = next((l for l in result.stdout.splitlines() if l.startswith("requests:")), result.stdout + result.stderr)
    return summary


def malformed_bodies(rng):
    """Bodies that are not a well-formed pb.Request call, one kind each."""
    invalid_utf8_info = bytes([0x12, 0x04, 0x0A, 0x02, 0xFF, 0xFE])       # Request{info{FunctionName: ff fe}}
    invalid_utf8_trigger = bytes([0x12, 0x06, 0x2A, 0x04, 0x0A, 0x02, 0xC3, 0x28])  # Info.Trigger.Name: c3 28
    return {
        "random protobuf bytes": frame(rng.randbytes(64)),
        "random long protobuf bytes": frame(rng.randbytes(4096)),
        "truncated message": frame(rng.randbytes(100))[:60],
        "truncated prefix": b"\x00\x00\x00",
        "length prefix larger than the body": frame(b"\x0a\x03abc", length=1000),
        "length prefix of 4 GiB": frame(b"\x0a\x03abc", length=0xFFFFFFFF),
        "length prefix smaller than the body": frame(b"\x0a\x05hello", length=2),
        "compressed flag without compression": frame(b"\x0a\x03abc", compressed=True),
        "invalid UTF-8 in Info.FunctionName": frame(invalid_utf8_info),
        "invalid UTF-8 in Trigger.Name": frame(invalid_utf8_trigger),
        "wrong wire type for input": frame(bytes([0x08, 0x96, 0x01])),
        "field with a truncated varint": frame(bytes([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])),
        "nested length past the end": frame(bytes([0x12, 0x7F, 0x0A, 0x01])),
        "two messages in a unary call": frame(b"\x0a\x01a") + frame(b"\x0a\x01b"),
        "unframed garbage": rng.randbytes(257),
        "zero-length message": frame(b""),
    }


def test_a_hundred_thousand_malformed_requests_leave_the_watcher_serving(start_watcher, call, tmp_path):
    watcher = start_watcher(env={"MAX_MESSAGE_BYTES": "64KiB"})
    rng = random.Random(20261125)
    cases = []
    for name, body in malformed_bodies(rng).items():
        cases.append((name, body, "/pb.FxWatcher/Call", ("content-type: application/grpc", "te: trailers")))
    good = frame(b"\x0a\x05hello")
    cases += [
        ("wrong content-type", good, "/pb.FxWatcher/Call", ("content-type: text/plain",)),
        ("json content-type", b'{"input":"aGVsbG8="}', "/pb.FxWatcher/Call", ("content-type: application/json",)),
        ("no content-type", good, "/pb.FxWatcher/CallBytes", ()),
        ("unknown method", good, "/pb.FxWatcher/Nope", ("content-type: application/grpc",)),
        ("unknown service", good, "/pb.Nothing/Call", ("content-type: application/grpc",)),
        ("streaming method, garbage", frame(rng.randbytes(32)) * 3, "/pb.FxWatcher/Calls", ("content-type: application/grpc",)),
        ("gateway, random bytes", frame(rng.randbytes(48)), "/pb.FxGateway/Invoke", ("content-type: application/grpc",)),
        ("health, random bytes", frame(rng.randbytes(16)), "/grpc.health.v1.Health/Check", ("content-type: application/grpc",)),
        ("GET with no body", None, "/pb.FxWatcher/Call", ("content-type: application/grpc",)),
    ]
    per_case = -(-100_000 // len(cases))  # at least 100,000 in all
    sent = 0
    baseline = resident_kib(watcher.process.pid)
    for index, (name, body, path, headers) in enumerate(cases):
        body_path = None
        if body is not None:
            body_path = tmp_path / f"body-{index}"
            body_path.write_bytes(body)
        summary = h2load(watcher.port, body_path, per_case, path=path, headers=headers)
        done = int(re.search(r"(\d+) done", summary).group(1))
        assert done == per_case, f"{name}: {summary}"
        sent += done
        assert watcher.process.poll() is None, f"{name} killed the watcher:\n{watcher.log[-2000:]}"
    assert sent >= 100_000
    assert call(watcher.port, b"still serving").Output == "still serving"
    assert call(watcher.mesh_port, b"mesh too").Output == "mesh too"
    grown = resident_kib(watcher.process.pid) - baseline
    assert grown < 64 * 1024, f"resident memory grew by {grown} KiB"


def test_a_handler_that_throws_a_hundred_thousand_times_leaves_the_process_healthy(start_watcher, pb, call, tmp_path):
    watcher = start_watcher(env={"HANDLER_NAME": "fail"})
    body_path = tmp_path / "throw"
    body_path.write_bytes(frame(pb.messages.Request(input=b"internalError:broken on purpose").SerializeToString()))
    baseline = resident_kib(watcher.process.pid)
    summary = h2load(watcher.port, body_path, 100_000)
    assert "100000 done" in summary, summary
    assert watcher.process.poll() is None
    with pytest.raises(grpc.RpcError) as raised:
        call(watcher.port, b"unavailable:still answering")
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert raised.value.details() == "still answering"
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        health = pb.health_services.HealthStub(channel).Check(pb.health_messages.HealthCheckRequest(), timeout=5)
        assert health.status == pb.health_messages.HealthCheckResponse.SERVING
    assert watcher.lock.exists()
    grown = resident_kib(watcher.process.pid) - baseline
    assert grown < 64 * 1024, f"resident memory grew by {grown} KiB"


def test_sigterm_under_64_concurrent_callers_loses_no_accepted_call(start_watcher, pb):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep", "DRAIN_TIMEOUT": "20s", "LOG_LEVEL": "debug"})
    outcomes = []          # (request id, status code name, output)
    lock = threading.Lock()
    stop = threading.Event()
    deadline = time.monotonic() + 30

    def caller(number):
        with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
            stub = pb.services.FxWatcherStub(channel)
            sequence = 0
            while not stop.is_set() and time.monotonic() < deadline and sequence < 10_000:
                request_id = f"c{number}-{sequence}"
                sequence += 1
                try:
                    reply = stub.Call(pb.messages.Request(input=f"20:{request_id}".encode()), timeout=30,
                                      metadata=[("x-request-id", request_id)])
                    result = (request_id, "OK", reply.Output)
                except grpc.RpcError as error:
                    result = (request_id, error.code().name, error.details())
                with lock:
                    outcomes.append(result)
                if result[1] != "OK":
                    return  # refused: this caller is done, as a client of a draining instance would be

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(64)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    watcher.signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=60)
    stop.set()
    assert watcher.wait_exit() == 0

    ok = [o for o in outcomes if o[1] == "OK"]
    refused = [o for o in outcomes if o[1] != "OK"]
    assert len(ok) > 64, "the load did not get going"
    assert all(output == request_id for request_id, _, output in ok), "a reply went to the wrong caller"
    assert {code for _, code, _ in refused} <= {"UNAVAILABLE"}, refused[:5]
    # Every call whose handler ran finished OK at its caller: none was cut off.
    handled = set(re.findall(r"request-id=(\S+) status=ok", watcher.log))
    refused_ids = {request_id for request_id, _, _ in refused}
    assert not (handled & refused_ids), f"handled but reported as failed: {sorted(handled & refused_ids)[:5]}"
    assert {request_id for request_id, _, _ in ok} <= handled
