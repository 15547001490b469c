"""End-to-end: the real `fxwatcher` binary, called by a Python grpcio client generated from
Protos/fxwatcher.proto, on loopback ports."""

import os
import signal
import socket
import stat
import struct
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from conftest import BINARY, accepts, free_port


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_echo_answers_on_both_ports(start_watcher, call):
    watcher = start_watcher()
    for port in (watcher.port, watcher.mesh_port):
        assert call(port, b"Have a nice day\n", FunctionName="echo").Output == "Have a nice day\n"
        assert call(port, "안녕하세요 ✓".encode()).Output == "안녕하세요 ✓"
        assert call(port, b"").Output == ""


def test_info_as_the_openfx_gateway_sends_it_is_accepted(start_watcher, pb):
    watcher = start_watcher()
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        stub = pb.services.FxWatcherStub(channel)
        info = pb.messages.Info(
            FunctionName="echo", Timeout="30s", Runtime="swift",
            Limits=pb.messages.Resources(Memory="128Mi", CPU="500m", GPU=""),
            Trigger=pb.messages.Trigger(Name="grpc", Topic="", Time="2019-01-21T19:07:28Z"),
        )
        assert stub.Call(pb.messages.Request(input=b"x", info=info), timeout=10).Output == "x"


def test_large_input_round_trips(start_watcher, call):
    watcher = start_watcher()
    payload = ("0123456789abcdef" * 65536).encode()  # 1 MiB
    assert call(watcher.port, payload).Output.encode() == payload


def test_lock_is_written_with_mode_0660_once_both_ports_accept(start_watcher):
    watcher = start_watcher()
    # wait_ready returned the moment the lock appeared: both ports must accept already.
    assert accepts(watcher.port) and accepts(watcher.mesh_port)
    mode = stat.S_IMODE(os.stat(watcher.lock).st_mode)
    assert mode == 0o660, oct(mode)


def test_the_ports_queue_1024_connections_not_yet_accepted(start_watcher, call):
    """Stopped (SIGSTOP), the watcher accepts nothing: the kernel completes a connection only
    while the port's queue has room, which must be the watcher's 1024 (the ports are bound
    before the event loops exist, and NIO listens again with its default of 128 when it takes
    them over)."""
    watcher = start_watcher()
    connected = []
    watcher.signal(signal.SIGSTOP)
    try:
        for port in (watcher.port, watcher.mesh_port):
            for _ in range(300):
                client = socket.socket()
                connected.append(client)
                client.settimeout(0.5)
                client.connect(("127.0.0.1", port))  # a full queue drops the SYN: a timeout
    finally:
        watcher.signal(signal.SIGCONT)
        for client in connected:
            client.close()
    assert len(connected) == 600
    assert call(watcher.port, b"after").Output == "after"


def test_no_lock_and_a_clear_error_when_a_port_cannot_be_bound(start_watcher, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        watcher = start_watcher(mesh_port=busy, wait=False)
        watcher.lock.write_text("stale")  # a lock left by an earlier process must not claim readiness
        assert watcher.wait_exit(timeout=30) == 1
        assert not watcher.lock.exists()
        assert "mesh" in watcher.log and "ddress already in use" in watcher.log, watcher.log


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_removes_lock_first_and_drains_the_call_in_flight(start_watcher, pb, signum):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep", "DRAIN_TIMEOUT": "20s"})
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        slow = pb.services.FxWatcherStub(channel).Call.future(pb.messages.Request(input=b"1500:done"), timeout=30)
        time.sleep(0.5)  # the call is now inside the handler
        watcher.signal(signum)
        assert wait_for(lambda: not watcher.lock.exists(), timeout=1.0), "lock not removed at once"
        assert not slow.done(), "the call in flight should still be running while the lock is gone"
        assert wait_for(lambda: not accepts(watcher.port), timeout=2.0), "still accepting new connections"
        assert slow.result().Output == "done"
    assert watcher.wait_exit() == 0
    assert "draining" in watcher.log and "drained" in watcher.log


def test_calls_still_running_after_the_drain_bound_are_cancelled_and_the_exit_is_clean(start_watcher, pb):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep", "DRAIN_TIMEOUT": "300ms"})
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        endless = pb.services.FxWatcherStub(channel).Call.future(pb.messages.Request(input=b"60000"), timeout=60)
        time.sleep(0.5)
        started = time.monotonic()
        watcher.signal(signal.SIGTERM)
        assert watcher.wait_exit(timeout=20) == 0
        assert time.monotonic() - started < 10
        with pytest.raises(grpc.RpcError) as raised:
            endless.result(timeout=20)
        assert raised.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert "drain timeout passed" in watcher.log


def unwind_tables(binary):
    """(start, end) link-time addresses of `.eh_frame` through `.eh_frame_hdr` in an ELF64
    executable, and the lowest PT_LOAD address (for a PIE's load bias)."""
    data = Path(binary).read_bytes()
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", data, 0x36)
    programs = [struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize) for i in range(phnum)]
    lowest_load = min(p[3] for p in programs if p[0] == 1) & ~0xFFF
    header = next(p for p in programs if p[0] == 0x6474E550)  # PT_GNU_EH_FRAME
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = sections[shstrndx][4]
    name = lambda s: data[names + s[0]:data.index(b"\0", names + s[0])].decode()
    frames = next(s for s in sections if name(s) == ".eh_frame")
    return frames[3], header[3] + header[5], lowest_load


def mapped_pages(pid, start, end):
    """Whether each page of [start, end) is mapped in process pid (/proc/PID/pagemap)."""
    first, last = start // 4096, (end + 4095) // 4096
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        pagemap.seek(first * 8)
        entries = pagemap.read((last - first) * 8)
    return [bool(entry >> 63) for (entry,) in struct.iter_unpack("<Q", entries)]


def test_once_started_the_watcher_gives_back_its_unwind_tables_pages(start_watcher, call):
    watcher = start_watcher()
    start, end, lowest_load = unwind_tables(BINARY)
    assert end - start > 64 * 4096
    with open(f"/proc/{watcher.process.pid}/maps") as maps:  # the load bias: 0 unless a PIE
        first = next(line.split() for line in maps if line.rstrip().endswith(str(Path(BINARY).resolve())))
    bias = int(first[0].split("-")[0], 16) - int(first[2], 16) - lowest_load
    inner = lambda: mapped_pages(watcher.process.pid, bias + start, bias + end)[1:-1]
    # Once the start-up is over the watcher gives back its read-only pages (ReadOnlySegments),
    # and calls do not read the tables again (Swift errors do not unwind): every page wholly
    # inside them goes, and at most a lookup's few pages come back with calls (none in a release
    # build; a debug build's call path looks one frame up).
    assert wait_for(lambda: not any(inner()), timeout=10), f"{sum(inner())} of {len(inner())} pages mapped"
    for i in range(20):
        assert call(watcher.port, f"after {i}".encode()).Output == f"after {i}"
    assert sum(inner()) * 20 < len(inner()), f"{sum(inner())} of {len(inner())} pages mapped again"


def test_handler_errors_become_statuses_and_the_process_keeps_serving(start_watcher, call):
    watcher = start_watcher(env={"HANDLER_NAME": "fail"})
    expectations = [
        (b"invalidArgument:capacity must be a number", grpc.StatusCode.INVALID_ARGUMENT, "capacity must be a number"),
        (b"notFound:no sensor 7", grpc.StatusCode.NOT_FOUND, "no sensor 7"),
        (b"unavailable:database down", grpc.StatusCode.UNAVAILABLE, "database down"),
        (b"the disk is on fire", grpc.StatusCode.UNKNOWN, "the disk is on fire"),
    ]
    for _ in range(3):
        for data, code, message in expectations:
            with pytest.raises(grpc.RpcError) as raised:
                call(watcher.port, data)
            assert raised.value.code() == code
            assert raised.value.details() == message
    assert watcher.process.poll() is None
    assert accepts(watcher.port) and watcher.lock.exists()


def test_output_that_is_not_utf8_is_an_error_status_never_repaired_text(start_watcher, call):
    watcher = start_watcher()
    with pytest.raises(grpc.RpcError) as raised:
        call(watcher.port, b"\xff\xd8\xff\xe0 jpeg")
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "not valid UTF-8" in raised.value.details()
    assert call(watcher.port, b"fine").Output == "fine"


def test_unknown_handler_name_exits_at_once_listing_the_known_ones(start_watcher):
    watcher = start_watcher(env={"HANDLER_NAME": "sentiment"}, wait=False)
    assert watcher.wait_exit(timeout=10) != 0
    assert 'unknown handler "sentiment"' in watcher.log
    assert "known handlers: crawler, echo, fail, imgprocessing, pyspark, relay, sentiment-analysis, sleep, unmarshalling" in watcher.log
    assert not watcher.lock.exists()


def test_openfx_default_handler_name_serves_the_default_handler(start_watcher, call):
    watcher = start_watcher(env={"HANDLER_NAME": "Handler"})
    assert call(watcher.port, b"ping").Output == "ping"


@pytest.mark.parametrize("env,args,named", [
    ({"WATCHER_PORT": "abc"}, [], 'WATCHER_PORT "abc"'),
    ({"WATCHER_PORT": "70000"}, [], 'WATCHER_PORT "70000"'),
    ({"WATCHER_PORT": None, "PORT": "http"}, [], 'PORT "http"'),
    ({"MESH_PORT": "-1"}, [], 'MESH_PORT "-1"'),
    ({"WATCHER_HOST": "localhost:80"}, [], 'WATCHER_HOST "localhost:80"'),
    ({"LOG_LEVEL": "verbose"}, [], 'LOG_LEVEL "verbose"'),
    ({"DRAIN_TIMEOUT": "soon"}, [], 'DRAIN_TIMEOUT "soon"'),
    ({"BUSY_POLL": "1s"}, [], 'BUSY_POLL "1s"'),
    ({}, ["--busy-poll", "often"], 'BUSY_POLL "often"'),
    ({"WATCHER_PORT": "6123", "MESH_PORT": "6123"}, [], "must differ"),
    ({}, ["--port", "abc"], 'WATCHER_PORT "abc"'),
    ({}, ["--mesh-port", "99999"], 'MESH_PORT "99999"'),
    ({}, ["--no-such-flag"], "no-such-flag"),
])
def test_bad_configuration_fails_at_start_with_a_clear_message(start_watcher, env, args, named):
    watcher = start_watcher(env=env, args=args, wait=False)
    assert watcher.wait_exit(timeout=10) == 64
    assert named in watcher.log, watcher.log
    assert not watcher.lock.exists()


@pytest.mark.parametrize("busy_poll", ["0", "10ms"])
def test_calls_are_answered_with_the_busy_poll_off_or_at_its_longest(start_watcher, call, busy_poll):
    watcher = start_watcher(env={"BUSY_POLL": busy_poll})
    for i in range(50):  # one at a time, each arriving while the loop still polls (or sleeps)
        assert call(watcher.port, f"call {i}".encode()).Output == f"call {i}"


def test_openfx_gos_port_variable_and_flags_are_accepted(start_watcher, call):
    port = free_port()
    watcher = start_watcher(env={"WATCHER_PORT": None, "PORT": str(port)}, port=port)
    assert call(port, b"via PORT").Output == "via PORT"
    flagged = free_port()
    overridden = start_watcher(args=["--port", str(flagged), "--handler", "sleep"], port=free_port())
    assert call(flagged, b"0:flags win").Output == "flags win"
    assert not accepts(overridden.port)


def test_debug_logging_writes_one_line_per_call_with_request_id_and_duration(start_watcher, call):
    watcher = start_watcher(env={"LOG_LEVEL": "debug"})
    call(watcher.port, b"a", metadata=[("x-request-id", "e2e-request-1")])
    call(watcher.mesh_port, b"b", metadata=[("x-request-id", "e2e-request-2")])
    assert wait_for(lambda: "e2e-request-2" in watcher.log)
    lines = [line for line in watcher.log.splitlines() if "[Watcher] call" in line]
    assert len(lines) == 2, watcher.log
    assert "request-id=e2e-request-1" in lines[0] and "duration-ms=" in lines[0] and "status=ok" in lines[0]
    quiet = start_watcher()
    call(quiet.port, b"a")
    assert "[Watcher] call" not in quiet.log


def test_help_and_list_handlers_exit_zero():
    listed = subprocess.run([str(BINARY), "--list-handlers"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0 and listed.stdout.split() == [
        "crawler", "echo", "fail", "imgprocessing", "pyspark", "relay", "sentiment-analysis", "sleep", "unmarshalling"]
    helped = subprocess.run([str(BINARY), "--help"], capture_output=True, text=True, timeout=30)
    assert helped.returncode == 0
    for setting in ("WATCHER_PORT", "MESH_PORT", "WATCHER_HOST", "HANDLER_NAME", "LOCK_FILE", "LOG_LEVEL", "DRAIN_TIMEOUT",
                    "BUSY_POLL"):
        assert setting in helped.stdout


def test_with_no_port_or_lock_settings_it_serves_50051_and_50052_and_writes_tmp_lock(start_watcher, call):
    if any(accepts(port) for port in (50051, 50052)) or os.path.exists("/tmp/.lock"):
        pytest.skip("50051/50052 or /tmp/.lock are in use on this machine")
    watcher = start_watcher(env={"WATCHER_PORT": None, "MESH_PORT": None, "LOCK_FILE": None}, wait=False)
    assert wait_for(lambda: os.path.exists("/tmp/.lock"), timeout=30), watcher.log
    assert call(50051, b"default").Output == "default"
    assert call(50052, b"mesh default").Output == "mesh default"
    watcher.signal(signal.SIGTERM)
    assert watcher.wait_exit() == 0
    assert not os.path.exists("/tmp/.lock")
