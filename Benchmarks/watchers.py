#!/usr/bin/env python3
"""fxwatcher against watchers shaped like OpenFx's own, side by side in one run.

Builds the reference servers in Benchmarks/reference-watchers (Go: grpc-go in GOPATH mode with
Debian's golang-google-grpc-dev; C++: a grpc++ synchronous server with Debian's libgrpc++-dev;
Python: grpcio with 10 worker threads), all echoing pb.FxWatcher/Call like the release
`fxwatcher` (echo). Then, for each round, runs every case against every server in turn (the
order rotating between rounds) with h2load on loopback, and prints calls/s, p50/p99 latency,
server CPU per call and resident memory, plus cold start (exec to the first OK call), the first
call of a server that is up (h2load's timing, 0.3 s after its port accepts), idle memory, and
each Swift build's ratio to the better of Go and C++.

Usage:
  swift build -c release --product fxwatcher
  .build-venv/bin/python Benchmarks/watchers.py [--rounds 2] [--seconds 5] [--servers swift,go,cpp,python] [--starts 10] [--static] [--function] [--also NAME=PATH ...]

--rounds 0 measures the starts only: to compare two builds' cold starts, e.g. a function built
before a change (copied from .build-bench/function-echo) against the one built now:
  .build-venv/bin/python Benchmarks/watchers.py --rounds 0 --starts 30 --servers go --function --also before=/tmp/function-before

--function also measures a function as the OpenFx template builds it (Templates/openfx-runtime,
against this checkout, with an echo handler): HandlerKit and Watcher only, none of the examples
fxwatcher carries, static stdlib and stripped as the template's image ships it. That, not
fxwatcher, is what a deployed function runs.

Needs: scripts/install-deps.sh --test, plus Debian's golang-go, golang-google-grpc-dev,
golang-goprotobuf-dev, libgrpc++-dev, protobuf-compiler-grpc (`--install` installs them).
Every server binds 127.0.0.1 only and is stopped by its PID; every load is bounded in time.
"""

import argparse
import hashlib
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))

from conftest import free_ports  # noqa: E402  (the e2e tests' own: one server's ports chosen together)

REFERENCE = REPO / "Benchmarks" / "reference-watchers"
WORK = REPO / ".build-bench"  # the reference servers' builds, kept between runs
APT_PACKAGES = ["golang-go", "golang-google-grpc-dev", "golang-goprotobuf-dev", "libgrpc++-dev",
                "protobuf-compiler-grpc", "protobuf-compiler", "nghttp2-client"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# (name, connections, streams per connection, input bytes)
CASES = [
    ("1 conn x 1, 5 B", 1, 1, 5),
    ("16 conns x 16 streams", 16, 16, 5),
    ("100 conns x 1", 100, 1, 5),
    ("64 KiB x 16 conns", 16, 1, 64 * 1024),
    ("1 MiB x 16 conns", 16, 1, 1024 * 1024),
]


def run(command, **kwargs):
    subprocess.run(command, check=True, **kwargs)


def build_references(python):
    """Builds the Go and C++ servers and the Python modules; returns each server's command."""
    WORK.mkdir(exist_ok=True)
    proto = REPO / "Protos" / "fxwatcher.proto"
    go_package = WORK / "go" / "src" / "fxbench"
    (go_package / "pb").mkdir(parents=True, exist_ok=True)
    run(["protoc", f"-I{proto.parent}", f"--go_out=plugins=grpc,paths=source_relative:{go_package / 'pb'}", str(proto)],
        stderr=subprocess.DEVNULL)
    shutil.copy(REFERENCE / "watcher.go", go_package / "main.go")
    run(["go", "build", "-o", str(WORK / "watcher-go"), "fxbench"],
        env={**os.environ, "GOPATH": f"{WORK / 'go'}:/usr/share/gocode", "GO111MODULE": "off",
             "GOCACHE": str(WORK / "go-cache")})

    cpp = WORK / "cpp"
    cpp.mkdir(exist_ok=True)
    run(["protoc", f"-I{proto.parent}", f"--cpp_out={cpp}", f"--grpc_out={cpp}",
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin", str(proto)])
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++", "protobuf"], check=True,
                           capture_output=True, text=True).stdout.split()
    run(["g++", "-O2", "-std=c++17", f"-I{cpp}", str(REFERENCE / "watcher.cc"), str(cpp / "fxwatcher.pb.cc"),
         str(cpp / "fxwatcher.grpc.pb.cc"), *flags, "-o", str(WORK / "watcher-cpp")])

    generated = WORK / "python"
    generated.mkdir(exist_ok=True)
    run([python, "-m", "grpc_tools.protoc", f"-I{proto.parent}", f"--python_out={generated}",
         f"--grpc_python_out={generated}", str(proto)])
    shutil.copy(REFERENCE / "watcher.py", generated / "watcher.py")
    return {
        "go": [str(WORK / "watcher-go")],
        "cpp": [str(WORK / "watcher-cpp")],
        "python": [python, str(generated / "watcher.py")],
    }


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Server:
    """One server process started here, on free loopback ports, stopped by its PID."""

    def __init__(self, name, command):
        self.name, self.command = name, command
        self.port, self.mesh_port = free_ports(2)
        self.lock = Path(tempfile.mkdtemp(prefix="fx-bench-")) / "lock"
        self.log = self.lock.with_name("log")
        env = {"PATH": os.environ["PATH"], "WATCHER_HOST": "127.0.0.1", "WATCHER_PORT": str(self.port),
               "MESH_PORT": str(self.mesh_port), "LOCK_FILE": str(self.lock), "LOG_LEVEL": "warning",
               "PYTHONPATH": str(WORK / "python")}
        self.started = time.perf_counter()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)

    def wait_until_accepting(self):
        """Returns once the port accepts connections (tried every 0.2 ms, for at most 30 s from exec)."""
        while not accepts(self.port):
            if time.perf_counter() > self.started + 30 or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} did not start (exit status {self.process.poll()}, ports "
                                   f"{self.port} and {self.mesh_port}):\n{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.0002)

    def cold_start(self, call_once):
        """Seconds from exec to the first OK call (connections tried every 0.2 ms)."""
        deadline = self.started + 30
        self.wait_until_accepting()
        while True:
            try:  # a fresh channel each time: a failed one would wait out grpcio's reconnect backoff
                call_once(self.port, b"hello")
                return time.perf_counter() - self.started
            except Exception:
                if time.perf_counter() > deadline:
                    raise
                time.sleep(0.0002)

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mb(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.lock.parent, ignore_errors=True)


def request_body(pb, size):
    message = pb.Request(input=b"x" * size).SerializeToString()
    return struct.pack(">BI", 0, len(message)) + message


def h2load(server, body_path, log_path, *options):
    """h2load's command line for calls of pb.FxWatcher/Call with the framed request in body_path,
    each call's timing logged to log_path."""
    return ["h2load", *options, "-d", str(body_path), "--log-file", str(log_path),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"http://127.0.0.1:{server.port}/pb.FxWatcher/Call"]


def load(server, case, body_path, seconds):
    """Runs h2load for `seconds` (after 1 s of warm-up); returns (calls/s, p50 µs, p99 µs, CPU µs/call)."""
    _, connections, streams, _ = case
    with tempfile.NamedTemporaryFile(prefix="h2load-", suffix=".log") as log:
        cpu_before = server.cpu_seconds()
        result = subprocess.run(
            h2load(server, body_path, log.name, "-t", "1", "-c", str(connections), "-m", str(streams),
                   "-D", str(seconds), "--warm-up-time", "1"),
            capture_output=True, text=True, timeout=seconds + 60)
        cpu = server.cpu_seconds() - cpu_before
        durations = sorted(int(line.split()[2]) for line in Path(log.name).read_text().splitlines()
                           if line.split()[1] == "200")
    if not durations:
        raise RuntimeError(f"{server.name}: no successful calls\n{result.stdout}\n{result.stderr}")
    calls = len(durations)
    p50 = durations[len(durations) // 2]
    p99 = durations[min(len(durations) - 1, (len(durations) * 99) // 100)]
    # CPU includes the warm-up second's calls; the per-call figure is over the measured ones.
    return calls / seconds, p50, p99, cpu * 1e6 / calls


def first_call_once_up(server, body_path):
    """µs of a fresh server's first call (h2load's own timing, connection set-up excluded), made
    0.3 s after its port accepts connections, as a first caller after readiness would."""
    server.wait_until_accepting()
    time.sleep(0.3)
    with tempfile.NamedTemporaryFile(prefix="h2load-", suffix=".log") as log:
        subprocess.run(h2load(server, body_path, log.name, "-n", "1", "-c", "1", "-m", "1"),
                       capture_output=True, text=True, timeout=60)
        lines = [line.split() for line in Path(log.name).read_text().splitlines()]
    if not lines or lines[0][1] != "200":
        raise RuntimeError(f"{server.name}: the first call failed")
    return int(lines[0][2])


# How both Dockerfiles compile a release build (see the README's "Shipping a function"): type
# metadata reached by direct accessor calls instead of mangled type names, whose run-time
# demangling checks generic requirements by scanning every protocol conformance record; no
# run-time exclusivity checks (the compiler's static ones stay); and each function in a section
# of its own, for the hot-code order.
COMPILE_FLAGS = ["-Xswiftc", "-Xfrontend", "-Xswiftc", "-disable-concrete-type-metadata-mangled-name-accessors",
                 "-Xswiftc", "-enforce-exclusivity=unchecked",
                 "-Xswiftc", "-Xfrontend", "-Xswiftc", "-function-sections", "-Xcc", "-ffunction-sections"]


def scratch_path(folder, compile_flags=COMPILE_FLAGS):
    """A scratch path under `folder` named after `compile_flags`: swift build does not recompile
    its dependencies' modules when only -Xswiftc flags change, so each set needs its own."""
    return Path(folder) / f".build-{hashlib.sha1(' '.join(compile_flags).encode()).hexdigest()[:10]}"


TEMPLATE_FUNCTION_BUILD = scratch_path(WORK / "function")
STATIC_FXWATCHER_BUILD = scratch_path(REPO / ".build-static")


def release_flags(order_file=REPO / "Linking" / "hot-sections.order"):
    """`swift build` flags of both Dockerfiles' release builds: COMPILE_FLAGS, and the start-up
    and call path's code linked together in Linking/hot-sections.order's order (without an order
    file, the sections only)."""
    flags = list(COMPILE_FLAGS)
    if Path(order_file).exists():
        flags += ["-Xlinker", f"--section-ordering-file={order_file}"]
    return flags


def static_libstdcxx_flags():
    """The flags with which the template's Dockerfile links libstdc++ and libgcc's unwinder into
    a function: a folder with only libstdc++.a searched first, so the static Swift runtime's
    -lstdc++ finds it, and clang's -static-libgcc."""
    folder = WORK / "static-libstdc++"
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["clang", "-print-file-name=libstdc++.a"], check=True, capture_output=True,
                             text=True).stdout.strip()
    (folder / "libstdc++.a").unlink(missing_ok=True)
    if Path(archive).is_file():  # without it, libstdc++.so is linked, as the Dockerfile then does
        (folder / "libstdc++.a").symlink_to(archive)
    return ["-Xlinker", f"-L{folder}", "-Xswiftc", "-Xclang-linker", "-Xswiftc", "-static-libgcc"]


def build_template_function(link_map=None):
    """Builds the OpenFx template's function with an echo handler against this checkout (static
    stdlib and libstdc++, hot code first, no $ORIGIN run path, stripped, as the template's
    Dockerfile does); returns the binary's path.
    With `link_map`, the linker writes its map there too (scripts/generate-hot-sections.py)."""
    source = WORK / "function"
    WORK.mkdir(exist_ok=True)
    shutil.copytree(REPO / "Templates" / "openfx-runtime" / "swift" / "src", source, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".build*"))
    (source / "Sources" / "Function" / "Handler.swift").write_text(
        "import HandlerKit\n\n"
        "/// Echo, as fxwatcher's default handler.\n"
        "struct Handler: HandlerKit.Handler {\n"
        "  func handle(_ request: Request, context: Context) async throws -> Output { .bytes(request.input) }\n"
        "}\n")
    package = WORK / "swift-openfx-watcher"  # the template names the package by its folder
    if not package.exists():
        package.symlink_to(REPO)
    map_flags = ["-Xlinker", f"-Map={link_map}"] if link_map else []
    # The watcher is a dependency (through the symlink): with a cached build manifest, swift build
    # would not see a source file added to it since the last build, and fail to compile.
    run(["swift", "build", "-c", "release", "--static-swift-stdlib", "--disable-local-rpath", "--product", "Function",
         *release_flags(), "--disable-build-manifest-caching",
         *static_libstdcxx_flags(), *map_flags, "--scratch-path", str(TEMPLATE_FUNCTION_BUILD)],
        cwd=source, env={**os.environ, "FXWATCHER_PACKAGE": str(package)})
    binary = WORK / "function-echo"
    shutil.copy(TEMPLATE_FUNCTION_BUILD / "release" / "Function", binary)
    run(["strip", str(binary)])
    return binary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(REPO / ".build" / "release" / "fxwatcher"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5, help="measured seconds per case and server")
    parser.add_argument("--servers", default="swift,go,cpp,python")
    parser.add_argument("--starts", type=int, default=10,
                        help="cold starts measured per server, after the rounds (the median is reported)")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                        help="also measure the watcher binary at PATH (an earlier build, say) under NAME")
    parser.add_argument("--install", action="store_true", help="apt-get install the reference servers' packages")
    parser.add_argument("--static", action="store_true",
                        help="also build (.build-static/) and measure a stripped static-stdlib release fxwatcher, "
                             "as the runtime image ships it")
    parser.add_argument("--function", action="store_true",
                        help="also build (.build-bench/function) and measure an echo function made from the OpenFx "
                             "template, static stdlib and stripped, as a deployed function runs")
    args = parser.parse_args()
    if args.install:
        run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES])
    python = str(REPO / ".build-venv" / "bin" / "python")
    commands = {"swift": [args.binary], **build_references(python)}
    sizes = {"swift": Path(args.binary), "go": WORK / "watcher-go", "cpp": WORK / "watcher-cpp"}
    if args.static:
        run(["swift", "build", "-c", "release", "--static-swift-stdlib", "--product", "fxwatcher", *release_flags(),
             "--scratch-path", str(STATIC_FXWATCHER_BUILD)], cwd=REPO)
        sizes["swift-static"] = WORK / "fxwatcher-static"
        shutil.copy(STATIC_FXWATCHER_BUILD / "release" / "fxwatcher", sizes["swift-static"])
        run(["strip", str(sizes["swift-static"])])
        commands["swift-static"] = [str(sizes["swift-static"])]
        args.servers += ",swift-static"
    if args.function:
        sizes["function"] = build_template_function()
        commands["function"] = [str(sizes["function"])]
        args.servers += ",function"
    for extra in args.also:
        name, _, path = extra.partition("=")
        if not name or not Path(path).is_file():
            parser.error(f"--also {extra}: expected NAME=PATH of a binary")
        commands[name], sizes[name] = [path], Path(path)
        args.servers += f",{name}"
    names = [name for name in args.servers.split(",") if name in commands]

    sys.path.insert(0, str(WORK / "python"))
    import grpc
    import fxwatcher_pb2 as pb
    import fxwatcher_pb2_grpc as rpc

    def call_once(port, data):
        """One call on a channel of its own, checked to echo."""
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = rpc.FxWatcherStub(channel).Call(pb.Request(input=data), timeout=2)
        assert reply.Output == data.decode(), "the server does not echo"

    bodies = {}
    with tempfile.TemporaryDirectory() as scratch:
        for case in CASES:
            path = Path(scratch) / f"body-{case[3]}"
            path.write_bytes(request_body(pb, case[3]))
            bodies[case[3]] = path

        results = {(name, case[0]): [] for name in names for case in CASES}
        starts = {name: [] for name in names}
        idle = {name: [] for name in names}
        peak = {name: [] for name in names}
        settled = {name: [] for name in names}
        for round_index in range(args.rounds):
            order = names[round_index % len(names):] + names[:round_index % len(names)]
            for name in order:
                server = Server(name, commands[name])
                try:
                    starts[name].append(server.cold_start(call_once) * 1000)
                    time.sleep(1)
                    idle[name].append(server.rss_mb())
                    for case in CASES:
                        results[(name, case[0])].append(load(server, case, bodies[case[3]], args.seconds))
                        print(f"round {round_index + 1} {name:6} {case[0]:22} {results[(name, case[0])][-1][0]:10,.0f} calls/s",
                              file=sys.stderr)
                    peak[name].append(server.rss_mb())
                    time.sleep(3)  # fxwatcher gives memory back once idle (IdleMemoryTrimmer, every 2 s)
                    settled[name].append(server.rss_mb())
                finally:
                    server.stop()

    # Each Swift build's calls/s over the better reference's, when a reference ran.
    swift_builds = [name for name in names if name not in ("go", "cpp", "python")]
    compared = swift_builds if any(name in names for name in ("go", "cpp")) else []
    if args.rounds > 0:
        print(f"\n{args.rounds} rounds, {args.seconds} s per case, h2load -t 1 on 127.0.0.1, "
              f"{os.cpu_count()} cores; each cell: mean calls/s, p50 / p99 µs, server CPU µs per call")
        print(" | ".join(["case"] + names + [f"{name} / best(go,cpp)" for name in compared]))
        for case in CASES:
            cells = [case[0]]
            rates = {}
            for name in names:
                runs = results[(name, case[0])]
                rates[name] = statistics.mean(r[0] for r in runs)
                cells.append(f"{rates[name]:,.0f} · {statistics.mean(r[1] for r in runs):,.0f} / "
                             f"{statistics.mean(r[2] for r in runs):,.0f} · {statistics.mean(r[3] for r in runs):,.0f}")
            best = max((rates[n] for n in ("go", "cpp") if n in rates), default=None)
            cells += [f"{rates[name] / best:.2f}x" for name in compared]
            print(" | ".join(cells))
    # More cold starts, the servers taking turns, each turn starting with the next server (a
    # start right after another server's exit can find the machine busier): the median of all
    # (the rounds' included, whose first may find a cold page cache) and the fastest. And the
    # first call of servers that are up, as a caller after readiness makes it.
    first_calls = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch) / "body"
        body.write_bytes(request_body(pb, 5))
        for turn in range(args.starts):
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                server = Server(name, commands[name])
                try:
                    starts[name].append(server.cold_start(call_once) * 1000)
                finally:
                    server.stop()
                server = Server(name, commands[name])
                try:
                    first_calls[name].append(first_call_once_up(server, body))
                finally:
                    server.stop()
    print(f"\n{len(starts[names[0]])} cold starts per server; " + " | ".join(names))
    print(" | ".join(["exec -> first OK call, median (ms)"] + [f"{statistics.median(starts[n]):.1f}" for n in names]))
    print(" | ".join(["exec -> first OK call, fastest (ms)"] + [f"{min(starts[n]):.1f}" for n in names]))
    print(" | ".join(["first call once up, median (µs)"] + [f"{statistics.median(first_calls[n]):,.0f}" for n in names]))
    if args.rounds > 0:  # measured in the rounds only
        for label, values in (("idle RSS (MB)", idle), ("RSS after the cases (MB)", peak), ("RSS 3 s later (MB)", settled)):
            print(" | ".join([label] + [f"{statistics.mean(values[n]):.1f}" for n in names]))
    print(" | ".join(["binary (MB)"] + [f"{sizes[n].stat().st_size / 1e6:.1f}" if n in sizes else "-" for n in names]))


if __name__ == "__main__":
    main()
