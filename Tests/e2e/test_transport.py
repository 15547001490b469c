"""End-to-end: the watcher's own gRPC transport (HTTP/2 on SwiftNIO) refuses what gRPC says it
must refuse, with the status the spec names, and keeps serving; grpcio and h2load as peers."""

import re
import shutil
import struct
import subprocess
import time

import grpc
import pytest

H2LOAD = shutil.which("h2load") or "h2load"


def frame(message):
    return struct.pack(">BI", 0, len(message)) + message


def status_counts(port, path, body_path, headers, requests=20):
    """h2load's HTTP status classes for `requests` POSTs: {'2xx': n, '4xx': n, ...}."""
    command = [H2LOAD, "-n", str(requests), "-c", "1", "-T", "10", "-d", str(body_path)]
    for header in headers:
        command += ["-H", header]
    result = subprocess.run(command + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=60)
    line = next(l for l in result.stdout.splitlines() if l.startswith("status codes:"))
    return {kind: int(count) for count, kind in re.findall(r"(\d+) (\dxx)", line)}


def test_an_unknown_method_is_unimplemented_naming_it(start_watcher, pb):
    watcher = start_watcher()
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        nope = channel.unary_unary("/pb.FxWatcher/Nope")
        with pytest.raises(grpc.RpcError) as raised:
            nope(b"", timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/pb.FxWatcher/Nope" in raised.value.details()


def test_a_compressed_request_is_unimplemented_and_identity_still_works(start_watcher, pb):
    watcher = start_watcher()
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        stub = pb.services.FxWatcherStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Call(pb.messages.Request(input=b"x" * 4096), timeout=10, compression=grpc.Compression.Gzip)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "identity" in raised.value.details()
        assert stub.Call(pb.messages.Request(input=b"plain"), timeout=10).Output == "plain"


@pytest.mark.parametrize("count", [0, 2])
def test_a_unary_call_with_other_than_one_message_is_internal(start_watcher, pb, count):
    watcher = start_watcher()
    request = pb.messages.Request(input=b"a").SerializeToString()
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        as_stream = channel.stream_unary("/pb.FxWatcher/Call")
        with pytest.raises(grpc.RpcError) as raised:
            as_stream(iter([request] * count), timeout=10)
        assert raised.value.code() == grpc.StatusCode.INTERNAL
        assert "message" in raised.value.details()
        assert pb.services.FxWatcherStub(channel).Call(pb.messages.Request(input=b"ok"), timeout=10).Output == "ok"


def test_an_undecodable_request_is_invalid_argument_naming_the_message(start_watcher, pb):
    watcher = start_watcher()
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        raw = channel.unary_unary("/pb.FxWatcher/Call")
        with pytest.raises(grpc.RpcError) as raised:
            raw(bytes([0x0A, 0x7F, 0x01]), timeout=10)  # field 1 claims 127 bytes, has 1
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pb.Request" in raised.value.details()


def test_a_request_that_is_not_grpc_gets_an_http_error_not_a_call(start_watcher, pb, call, tmp_path):
    watcher = start_watcher()
    body = tmp_path / "body"
    body.write_bytes(frame(pb.messages.Request(input=b"hi").SerializeToString()))
    assert status_counts(watcher.port, "/pb.FxWatcher/Call", body, ["content-type: application/grpc", "te: trailers"]) \
        == {"2xx": 20, "3xx": 0, "4xx": 0, "5xx": 0}
    assert status_counts(watcher.port, "/pb.FxWatcher/Call", body, ["content-type: application/json"]) \
        == {"2xx": 0, "3xx": 0, "4xx": 20, "5xx": 0}
    assert call(watcher.port, b"still serving").Output == "still serving"


def test_many_streams_on_one_connection_each_get_their_own_reply(start_watcher, pb):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep"})
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        stub = pb.services.FxWatcherStub(channel)
        futures = [stub.Call.future(pb.messages.Request(input=f"{n % 7 * 10}:{n}".encode()), timeout=30)
                   for n in range(300)]
        assert [f.result().Output for f in futures] == [str(n) for n in range(300)]


def test_a_cancelled_call_stops_its_handler_and_frees_its_slot(start_watcher, pb, call):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep", "MAX_INFLIGHT": "1", "LOG_LEVEL": "debug"})
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        stub = pb.services.FxWatcherStub(channel)
        slow = stub.Call.future(pb.messages.Request(input=b"60000:slow"), timeout=120,
                                metadata=[("x-request-id", "to-cancel")])
        time.sleep(0.5)
        slow.cancel()
        deadline = time.monotonic() + 10
        while "request-id=to-cancel status=cancelled" not in watcher.log and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "request-id=to-cancel status=cancelled" in watcher.log, watcher.log[-2000:]
    assert call(watcher.port, b"0:slot free").Output == "slot free"
