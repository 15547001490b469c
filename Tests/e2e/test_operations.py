"""End-to-end: byte-safe and streaming methods, the gateway surface, health, timeouts and
limits of the real `fxwatcher`, with Python grpcio clients generated from Protos/."""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

JPEG_LIKE = bytes([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]) + os.urandom(4096) + bytes([0xFF, 0xD9])


def channel_to(port):
    return grpc.insecure_channel(f"127.0.0.1:{port}")


def test_call_bytes_returns_binary_output_untouched_on_both_ports(start_watcher, pb):
    watcher = start_watcher()
    for port in (watcher.port, watcher.mesh_port):
        with channel_to(port) as channel:
            stub = pb.services.FxWatcherStub(channel)
            assert stub.CallBytes(pb.messages.Request(input=JPEG_LIKE), timeout=10).Output == JPEG_LIKE


def test_calls_streams_one_reply_per_request_in_order(start_watcher, pb):
    watcher = start_watcher()
    frames = [os.urandom(64 + n) for n in range(200)]
    with channel_to(watcher.port) as channel:
        stub = pb.services.FxWatcherStub(channel)
        replies = [m.Output for m in stub.Calls(iter(pb.messages.Request(input=f) for f in frames), timeout=30)]
    assert replies == frames


def test_the_seeds_gateway_clients_work_against_the_watcher_alone(start_watcher, pb):
    """The MQTT broker's Invoke and the image client's Invokes, as the seed writes them."""
    watcher = start_watcher(env={"FUNCTION_NAME": "echo"})
    with channel_to(watcher.port) as channel:
        stub = pb.gateway_services.FxGatewayStub(channel)
        request = pb.gateway_messages.InvokeServiceRequest(Service="echo", Input="hello from a device".encode())
        assert stub.Invoke(request, timeout=10).Msg == "hello from a device"
        frames = [os.urandom(1000) for _ in range(20)]
        requests = iter(pb.gateway_messages.InvokeServiceRequest(Service="echo", Input=f) for f in frames)
        assert [m.Output for m in stub.Invokes(requests, timeout=30)] == frames
        with pytest.raises(grpc.RpcError) as raised:
            stub.Invoke(pb.gateway_messages.InvokeServiceRequest(Service="imgprocessing", Input=b"x"), timeout=10)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert '"echo"' in raised.value.details()


def test_health_is_serving_when_ready_and_not_serving_while_draining(start_watcher, pb):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep", "DRAIN_TIMEOUT": "10s"})
    health = pb.health_messages
    with channel_to(watcher.mesh_port) as channel:
        probe = pb.health_services.HealthStub(channel)
        assert probe.Check(health.HealthCheckRequest(), timeout=5).status == health.HealthCheckResponse.SERVING
        assert probe.Check(health.HealthCheckRequest(service="pb.FxWatcher"), timeout=5).status == \
            health.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as raised:
            probe.Check(health.HealthCheckRequest(service="pb.Unknown"), timeout=5)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND

        watched = []
        watch = probe.Watch(health.HealthCheckRequest(), timeout=30)
        watcher_thread = threading.Thread(target=lambda: watched.extend(r.status for r in watch))
        watcher_thread.start()
        with channel_to(watcher.port) as busy_channel:
            slow = pb.services.FxWatcherStub(busy_channel).Call.future(pb.messages.Request(input=b"1000:done"), timeout=30)
            time.sleep(0.3)
            watcher.signal(signal.SIGTERM)
            watcher_thread.join(timeout=10)
            assert watched == [health.HealthCheckResponse.SERVING, health.HealthCheckResponse.NOT_SERVING]
            assert slow.result().Output == "done"
    assert watcher.wait_exit() == 0


def test_info_timeout_caller_deadline_and_exec_timeout_each_end_a_slow_call(start_watcher, call):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep", "EXEC_TIMEOUT": "400ms"})
    cases = [
        ({"Timeout": "150ms"}, 10, 0.150),   # Info.Timeout is shortest
        ({}, 0.25, 0.250),                   # the caller's deadline is shortest
        ({}, 10, 0.400),                     # EXEC_TIMEOUT applies
        ({"Timeout": "1"}, 10, 0.400),       # "1" means one second: EXEC_TIMEOUT is still shorter
    ]
    for info, deadline, expected in cases:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as raised:
            call(watcher.port, b"5000", timeout=deadline, **info)
        elapsed = time.monotonic() - started
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (info, raised.value.details())
        assert expected <= elapsed + 0.005 and elapsed < expected + 2.0, (info, elapsed)
    assert call(watcher.port, b"10:quick", Timeout="5s").Output == "quick"


def test_a_malformed_info_timeout_is_invalid_argument(start_watcher, call):
    watcher = start_watcher()
    with pytest.raises(grpc.RpcError) as raised:
        call(watcher.port, b"x", Timeout="thirty seconds")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Info.Timeout" in raised.value.details()


def test_calls_over_the_inflight_limit_are_refused_at_once_not_queued(start_watcher, pb, call):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep", "MAX_INFLIGHT": "2"})
    with channel_to(watcher.port) as channel:
        stub = pb.services.FxWatcherStub(channel)
        busy = [stub.Call.future(pb.messages.Request(input=b"1500:busy"), timeout=30) for _ in range(2)]
        time.sleep(0.4)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Call(pb.messages.Request(input=b"0:third"), timeout=10)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "MAX_INFLIGHT" in raised.value.details()
        assert [f.result().Output for f in busy] == ["busy", "busy"]
    assert call(watcher.port, b"0:free again").Output == "free again"


def test_messages_over_the_size_limit_are_refused_and_the_server_is_unharmed(start_watcher, pb, call):
    watcher = start_watcher(env={"MAX_MESSAGE_BYTES": "64KiB"})
    limit = 64 * 1024
    assert len(call(watcher.port, b"a" * limit).Output) == limit
    for size in (limit + 1, 200 * 1024, 4 * limit):
        with pytest.raises(grpc.RpcError) as raised:
            call(watcher.port, b"a" * size)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, size
        assert "MAX_MESSAGE_BYTES" in raised.value.details()
    # Far past the limit the transport refuses the message from its length prefix, unread.
    with pytest.raises(grpc.RpcError) as raised:
        call(watcher.port, b"a" * (8 * 1024 * 1024))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "MAX_MESSAGE_BYTES" in raised.value.details()
    assert call(watcher.port, b"still fine").Output == "still fine"
    assert watcher.process.poll() is None


def test_new_calls_during_drain_are_refused_and_accepted_ones_complete(start_watcher, pb):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep", "DRAIN_TIMEOUT": "10s"})
    with channel_to(watcher.port) as channel:
        stub = pb.services.FxWatcherStub(channel)
        accepted = [stub.Call.future(pb.messages.Request(input=b"800:finished"), timeout=30) for _ in range(8)]
        time.sleep(0.3)
        watcher.signal(signal.SIGTERM)
        time.sleep(0.2)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Call(pb.messages.Request(input=b"0:late"), timeout=5, wait_for_ready=False)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert [f.result().Output for f in accepted] == ["finished"] * 8
    assert watcher.wait_exit() == 0


def test_a_handler_calls_another_watcher_over_the_mesh_and_survives_its_absence(start_watcher, call):
    callee = start_watcher()
    caller = start_watcher(env={"HANDLER_NAME": "relay", "MESH_ADDRESS": f"{{function}}:{callee.mesh_port}"})
    # The function name fills {function}: here it is the callee's loopback address.
    assert call(caller.port, b"127.0.0.1:hello over the mesh").Output == "hello over the mesh"
    callee.signal(signal.SIGTERM)
    assert callee.wait_exit() == 0
    with pytest.raises(grpc.RpcError) as raised:
        call(caller.port, b"127.0.0.1:anyone there?")
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "mesh call to 127.0.0.1" in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        call(caller.port, b"no/such name:payload")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caller.process.poll() is None


def test_mesh_calls_reach_an_independent_grpcio_callee_with_its_status_intact(start_watcher, call, pb):
    """The watcher's own mesh client against grpcio's C core as the callee: the request it sends
    (function name, trigger, a deadline grpcio reads), the reply, a status with a non-ASCII
    message, and a reply over the 4 MiB limit."""
    from concurrent import futures
    seen = []

    class Callee(pb.services.FxWatcherServicer):
        def Call(self, request, context):
            seen.append((request.info.FunctionName, request.info.Trigger.Name, context.time_remaining(),
                         dict(context.invocation_metadata()).get("user-agent", "")))
            text = request.input.decode()
            if text == "missing":
                context.abort(grpc.StatusCode.NOT_FOUND, "센서 없음: 100% gone")
            if text == "huge":
                return pb.messages.Reply(Output="a" * (4 * 1024 * 1024 + 1))
            return pb.messages.Reply(Output=f"python heard {text}")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb.services.add_FxWatcherServicer_to_server(Callee(), server)
    callee_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        caller = start_watcher(env={"HANDLER_NAME": "relay", "MESH_ADDRESS": f"{{function}}:{callee_port}"})
        assert call(caller.port, b"127.0.0.1:hello", timeout=10).Output == "python heard hello"
        function, trigger, remaining, agent = seen[0]
        assert (function, trigger) == ("127.0.0.1", "mesh")
        assert 0 < remaining <= 10, remaining  # the caller's 10 s deadline bounds the mesh call's
        assert "fxwatcher-mesh" in agent
        with pytest.raises(grpc.RpcError) as raised:
            call(caller.port, b"127.0.0.1:missing")
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert raised.value.details().endswith("failed: 센서 없음: 100% gone"), raised.value.details()
        with pytest.raises(grpc.RpcError) as raised:
            call(caller.port, b"127.0.0.1:huge")
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert call(caller.port, b"127.0.0.1:again").Output == "python heard again"
    finally:
        server.stop(None)


def scrape(port):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/plain")
        return response.read().decode()


def sample(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_prometheus_metrics_count_calls_by_method_and_status(start_watcher, pb, call):
    from conftest import free_port, accepts
    import urllib.error
    import urllib.request

    metrics_port = free_port()
    watcher = start_watcher(env={"HANDLER_NAME": "fail", "METRICS_PORT": str(metrics_port), "MAX_INFLIGHT": "1"})
    assert accepts(metrics_port), "the lock is written only once the metrics port accepts too"
    for _ in range(3):
        with pytest.raises(grpc.RpcError):
            call(watcher.port, b"notFound:nothing here")
    with pytest.raises(grpc.RpcError):
        call(watcher.port, b"plain failure")
    with channel_to(watcher.port) as channel:
        with pytest.raises(grpc.RpcError):
            pb.services.FxWatcherStub(channel).CallBytes(pb.messages.Request(input=b"unavailable:down"), timeout=5)
    text = scrape(metrics_port)
    assert sample(text, 'fxwatcher_calls_total{method="Call",status="notFound"}') == 3
    assert sample(text, 'fxwatcher_calls_total{method="Call",status="unknown"}') == 1
    assert sample(text, 'fxwatcher_calls_total{method="CallBytes",status="unavailable"}') == 1
    assert sample(text, 'fxwatcher_call_duration_seconds_count{method="Call"}') == 4
    assert sample(text, "fxwatcher_calls_in_flight") == 0
    assert sample(text, "process_resident_memory_bytes") > 1_000_000
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/other", timeout=5)
    assert missing.value.code == 404


def test_metrics_are_off_by_default(start_watcher):
    watcher = start_watcher()
    # The lock is written just before the "watcher ready" line: wait for the line.
    deadline = time.monotonic() + 10
    while "watcher ready" not in watcher.log and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "watcher ready" in watcher.log and " metrics=" not in watcher.log
