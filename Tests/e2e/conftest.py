"""Fixtures for end-to-end tests: the real `fxwatcher` binary called by a Python grpcio client
generated, at test time, from the repository's own Protos/fxwatcher.proto."""

import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("FXWATCHER_BIN", REPO / ".build" / "debug" / "fxwatcher"))
START_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The Python modules generated from Protos/: `messages`/`services` (pb.FxWatcher),
    `gateway_messages`/`gateway_services` (pb.FxGateway), `health_messages`/`health_services`,
    `mleap` (MLeap bundles' protobuf files)."""
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("generated")
    protos = tmp_path_factory.mktemp("protos")
    # Flatten the tree: a Python module path grpc/health/v1 would shadow the grpc package.
    for proto in (REPO / "Protos").rglob("*.proto"):
        shutil.copy(proto, protos / proto.name)
    status = protoc.main([
        "grpc_tools.protoc", f"-I{protos}", f"--python_out={out}", f"--grpc_python_out={out}",
        *sorted(str(p) for p in protos.glob("*.proto")),
    ])
    assert status == 0, "protoc failed on Protos/"
    sys.path.insert(0, str(out))

    class Namespace:
        pass

    namespace = Namespace()
    namespace.messages = importlib.import_module("fxwatcher_pb2")
    namespace.services = importlib.import_module("fxwatcher_pb2_grpc")
    namespace.gateway_messages = importlib.import_module("fxgateway_pb2")
    namespace.gateway_services = importlib.import_module("fxgateway_pb2_grpc")
    namespace.health_messages = importlib.import_module("health_pb2")
    namespace.health_services = importlib.import_module("health_pb2_grpc")
    namespace.mleap = importlib.import_module("bundle_pb2")  # Protos/mleap: MLeap's model.pb/node.pb
    return namespace


def free_port():
    """A port nothing listens on right now, on 127.0.0.1."""
    return free_ports(1)[0]


def free_ports(count):
    """`count` different ports nothing listens on right now, on 127.0.0.1 (held together while
    chosen: one at a time, the kernel may hand the same port out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def accepts(port, host="127.0.0.1"):
    """Whether a TCP connection to host:port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Watcher:
    """One running `fxwatcher` process started by a test, stopped only by its own PID."""

    def __init__(self, process, port, mesh_port, lock, log_path):
        self.process, self.port, self.mesh_port, self.lock, self.log_path = process, port, mesh_port, lock, log_path

    @property
    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.lock.exists():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"fxwatcher exited with {self.process.returncode}:\n{self.log}")
            time.sleep(0.01)
        raise AssertionError(f"no lock file after {timeout}s:\n{self.log}")

    def signal(self, signum=signal.SIGTERM):
        self.process.send_signal(signum)

    def wait_exit(self, timeout=30):
        return self.process.wait(timeout=timeout)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def start_watcher(tmp_path):
    """Starts `fxwatcher` on free loopback ports with a private lock file; returns a Watcher."""
    started = []

    def start(env=None, args=(), wait=True, port=None, mesh_port=None):
        chosen = iter(free_ports(2))
        port = port or next(chosen)
        mesh_port = mesh_port or next(chosen)
        lock = tmp_path / f"lock-{len(started)}"
        log_path = tmp_path / f"watcher-{len(started)}.log"
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "WATCHER_HOST": "127.0.0.1",
            "WATCHER_PORT": str(port),
            "MESH_PORT": str(mesh_port),
            "LOCK_FILE": str(lock),
        }
        environment.update(env or {})
        environment = {k: v for k, v in environment.items() if v is not None}
        with open(log_path, "wb") as log:
            process = subprocess.Popen([str(BINARY), *args], env=environment, stdout=log, stderr=subprocess.STDOUT)
        watcher = Watcher(process, port, mesh_port, lock, log_path)
        started.append(watcher)
        if wait:
            watcher.wait_ready()
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


@pytest.fixture
def call(pb):
    """Calls pb.FxWatcher/Call on 127.0.0.1:port with a fresh channel; returns the Reply."""

    def invoke(port, data, timeout=10, metadata=None, **info):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb.services.FxWatcherStub(channel)
            request = pb.messages.Request(input=data, info=pb.messages.Info(**info))
            return stub.Call(request, timeout=timeout, metadata=metadata)

    return invoke


@pytest.fixture(scope="session")
def handler_libraries(tmp_path_factory):
    """The handler libraries of Tests/Fixtures/handler-library, built (debug) as a function
    author builds one: a package of its own beside a checkout named swift-openfx-watcher, whose
    dynamic libraries link the HandlerKitShared product. Returns the folder with the lib*.so."""
    work = tmp_path_factory.mktemp("handler-library")
    shutil.copytree(REPO / "Tests" / "Fixtures" / "handler-library", work / "handler-library")
    (work / "swift-openfx-watcher").symlink_to(REPO)
    scratch = REPO / ".build-handler-library"  # kept between runs, so builds are incremental
    log = work / "build.log"
    with open(log, "wb") as out:
        built = subprocess.run(["swift", "build", "--package-path", str(work / "handler-library"),
                                "--scratch-path", str(scratch)], stdout=out, stderr=subprocess.STDOUT)
    assert built.returncode == 0, log.read_text(errors="replace")[-4000:]
    return scratch / "debug"
