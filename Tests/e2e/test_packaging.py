"""Shipping a function: the runtime image (Dockerfile.swift-runtime) and the OpenFx-runtime
template (Templates/openfx-runtime), each built by running its Dockerfile's steps on this
machine (no Docker engine here), then started as the image would start and called over gRPC."""

import os
import shutil
import signal
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

import grpc
import pytest

from conftest import REPO, free_port
from dockerfile import build, instructions, lint
from mqtt_peers import wait_until

TEMPLATE = REPO / "Templates" / "openfx-runtime"


@pytest.fixture
def image_root():
    """A world-readable directory for an image's final stage, so its non-root USER can run it."""
    root = Path(tempfile.mkdtemp(prefix="fx-image-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def serve(image, tmp_path, pb, request_text, expected, env=None):
    """Starts the image's ENTRYPOINT on loopback ports with the image's own lock file (and `env`,
    as `docker run -e`) and checks the healthcheck, a call, the user it runs as, and a SIGTERM
    drain."""
    lock = Path(image.env["LOCK_FILE"])
    lock.unlink(missing_ok=True)  # a stale lock would pass the healthcheck early
    port = free_port()
    log = open(tmp_path / "image.log", "wb")
    process = image.start({"WATCHER_HOST": "127.0.0.1", "WATCHER_PORT": str(port), "MESH_PORT": str(free_port()),
                           **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: lock.exists() or process.poll() is not None, 30, "the image's watcher did not start")
        assert process.poll() is None, (tmp_path / "image.log").read_text()
        assert image.healthy(), "HEALTHCHECK fails while the watcher is ready"
        uid = next(line.split()[1] for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
                   if line.startswith("Uid:"))
        if os.geteuid() == 0:
            assert uid == image.user, "the watcher does not run as the image's USER"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = pb.services.FxWatcherStub(channel).Call(pb.messages.Request(input=request_text.encode()), timeout=10)
        assert reply.Output == expected
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not image.healthy(), "HEALTHCHECK passes after shutdown"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        lock.unlink(missing_ok=True)


def test_the_runtime_dockerfile_is_a_proper_function_image():
    assert lint(REPO / "Dockerfile.swift-runtime") == []
    assert lint(TEMPLATE / "swift" / "Dockerfile") == []


def test_the_lint_names_what_is_wrong(tmp_path):
    single = tmp_path / "single"
    single.write_text("FROM swift:6.1\nCOPY . .\nRUN swift build\nEXPOSE 50051\nCMD ./fxwatcher\n")
    problems = "\n".join(lint(single))
    for expected in ("not multi-stage", "runs as root", "EXPOSE 50052 missing", "HEALTHCHECK", "exec form",
                     "no build arguments", "copies nothing"):
        assert expected in problems
    staged = tmp_path / "staged"
    staged.write_text("ARG X=1\nFROM swift:6.1 AS build\nRUN swift build\nFROM debian\nCOPY --from=build /a /a\n"
                      "USER root\nEXPOSE 50051 50052\nHEALTHCHECK CMD true\nENTRYPOINT [\"/a\"]\n")
    problems = "\n".join(lint(staged))
    for expected in ("runs as root", "HEALTHCHECK must test the lock file", "-c release --static-swift-stdlib"):
        assert expected in problems
    shared = tmp_path / "shared"
    shared.write_text(staged.read_text().replace("RUN swift build", "ARG STDLIB=--no-static-swift-stdlib\n"
                                                 "RUN swift build -c release ${STDLIB}"))
    assert "-c release --static-swift-stdlib" in "\n".join(lint(shared))
    assert "multi-stage" not in problems and "exec form" not in problems and "EXPOSE" not in problems


def hot_code_placement(binary, order_file):
    """How well `binary` follows `order_file` (Linking/hot-sections.order): the share of the
    functions it lists that `binary` has, and how far apart they lie — the span from the first
    one's start to the last one's end, over the sum of their sizes (1: side by side). A name
    that several objects define locally (a merged `...Tm` function, say) also names copies the
    order does not place, so the span counts the names defined once."""
    listed = {line[len(".text."):] for line in order_file.read_text().split() if line.startswith(".text.")}
    extents = defaultdict(list)
    for line in subprocess.run(["nm", "-S", "--defined-only", str(binary)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW" and fields[3] in listed:
            extents[fields[3]].append((int(fields[0], 16), int(fields[1], 16)))
    unique = [places[0] for places in extents.values() if len(places) == 1]
    span = max(start + size for start, size in unique) - min(start for start, _ in unique)
    return len(extents) / len(listed), span / sum(size for _, size in unique)


def test_the_runtime_image_builds_and_serves_a_chosen_handler_as_non_root(pb, tmp_path, image_root, handler_libraries):
    with open(tmp_path / "build.log", "wb") as log:
        image = build(REPO / "Dockerfile.swift-runtime", context=REPO, scratch=REPO / ".build-dockerfile",
                      final_root=image_root, build_args={"HANDLER_NAME": "sentiment-analysis"}, log=log)
    assert image.exposed == ["50051", "50052"] and image.user == "10001"
    assert image.env["HANDLER_NAME"] == "sentiment-analysis"
    binary = image.host_path(image.entrypoint[0])
    linked = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    assert "libswiftCore" not in linked and "libFoundation" not in linked, f"the Swift runtime is not static:\n{linked}"
    # A release build is linked at a fixed address (ELF type EXEC, not a PIE's DYN): no relocations at start.
    assert int.from_bytes(binary.read_bytes()[16:18], "little") == 2
    # Hot code first: the functions the start-up and a call run lie together, as the order file
    # lists them (without the build's section flags they would spread over all 16 MB of code).
    # A file that no longer covers the code is regenerated with scripts/generate-hot-sections.py.
    covered, spread = hot_code_placement(REPO / ".build-dockerfile" / "stage0" / "build" / ".build" / "release" / "fxwatcher",
                                         REPO / "Linking" / "hot-sections.order")
    assert covered > 0.8, f"Linking/hot-sections.order is stale: {covered:.0%} of it is in the build"
    assert spread < 1.5, (f"the hot functions are spread over {spread:.1f} times their size (objects compiled "
                          "before without function sections are not recompiled: remove .build-dockerfile)")
    # The sentiment lexicon travels as a resource bundle next to the binary.
    serve(image, tmp_path, pb, "Have a nice day\n", "Sentiment(polarity=0.6, 1.0) \n")
    # A static watcher cannot share its Swift runtime with a handler library: it says so.
    refused = subprocess.run([str(binary), "--handler-file", str(handler_libraries / "libGreeter.so")],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 64 and "Swift runtime linked in" in refused.stderr, refused.stderr


def test_the_shared_runtime_image_hosts_a_separately_built_handler_library(pb, tmp_path, image_root, handler_libraries):
    # A scratch of its own: --static-swift-stdlib changes every compile step, so sharing one would
    # rebuild everything at each switch.
    with open(tmp_path / "build.log", "wb") as log:
        image = build(REPO / "Dockerfile.swift-runtime", context=REPO, scratch=REPO / ".build-dockerfile-shared",
                      final_root=image_root, log=log,
                      # debug (a debugging image) keeps the suite's time down; the release
                      # build is the static image's test above.
                      build_args={"SWIFT_STDLIB": "--no-static-swift-stdlib", "CONFIGURATION": "debug"})
    # The Swift runtime ships in the image, where LD_LIBRARY_PATH points, and is what it runs on.
    lib = image.host_path(image.env["LD_LIBRARY_PATH"])
    shipped = {path.name for path in lib.iterdir()}
    assert {"libswiftCore.so", "libFoundation.so", "libFoundationNetworking.so", "libswiftSwiftOnoneSupport.so"} <= shipped
    assert not any("XCTest" in name or "Testing" in name for name in shipped)
    binary = image.host_path(image.entrypoint[0])
    linked = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                            env={**os.environ, "LD_LIBRARY_PATH": str(lib)}).stdout
    assert f"libswiftCore.so => {lib}/libswiftCore.so" in linked, linked
    # The library a function author built on their own, copied into the image with the
    # HandlerKitShared library it links.
    function = image.host_path("/opt/function")
    function.mkdir(parents=True)
    for name in ("libGreeter.so", "libHandlerKitShared.so"):
        shutil.copy(handler_libraries / name, function / name)
    serve(image, tmp_path, pb, "OpenFx", "Hello, OpenFx",
          env={"LD_LIBRARY_PATH": str(lib), "HANDLER_FILE": str(function / "libGreeter.so")})


def test_the_openfx_template_initialises_builds_and_answers(pb, tmp_path, image_root):
    runtimes = (TEMPLATE / "list.yml").read_text()
    assert "swift:" in runtimes and "dir: swift" in runtimes and "name: Handler" in runtimes
    # openfx-cli fn init hello --runtime swift: copies the runtime folder, handler in src/.
    function = tmp_path / "hello"
    shutil.copytree(TEMPLATE / "swift", function)
    assert (function / "src" / "Sources" / "Function" / "Handler.swift").exists()
    # The package depends on the watcher by its identity: a checkout named swift-openfx-watcher.
    checkout = tmp_path / "swift-openfx-watcher"
    checkout.symlink_to(REPO)
    with open(tmp_path / "build.log", "wb") as log:
        # A debug build (the image's CONFIGURATION argument) keeps the suite's time down; the
        # release build is the runtime image's test above.
        image = build(function / "Dockerfile", context=function, scratch=REPO / ".build-template",
                      final_root=image_root, build_args={"FXWATCHER_PACKAGE": str(checkout), "CONFIGURATION": "debug"},
                      log=log)
    assert [keyword for keyword, _ in instructions(function / "Dockerfile")].count("FROM") == 2
    # Nothing the watcher links imports all of Foundation: with it came FoundationInternationalization
    # and its ICU data, twice the binary (85 MB instead of 41) and 6 MB more resident at idle.
    binary = image.host_path(image.entrypoint[0])
    contents = binary.read_bytes()
    assert b"FoundationEssentials" in contents and b"FoundationInternationalization" not in contents
    # The Swift runtime, its C++ library and the unwinder are linked in: none is loaded at start.
    needed = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    assert "libstdc++" not in needed and "libswiftCore" not in needed and "libc.so.6" in needed, needed
    assert "libgcc_s" not in needed, needed
    # No run path ($ORIGIN): the loader does not look for libm and libc beside the binary first.
    assert "RUNPATH" not in needed and "RPATH" not in needed, needed
    serve(image, tmp_path, pb, "OpenFx", "Hello, OpenFx")


def go_seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    number = text.rstrip("mhs")
    return float(number) * units[text[len(number):]]


def test_the_kubernetes_example_is_consistent_and_its_settings_start_a_watcher(start_watcher):
    import yaml

    documents = list(yaml.safe_load_all((REPO / "Deploy" / "kubernetes" / "function.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    service = next(d for d in documents if d["kind"] == "Service")
    assert deployment["apiVersion"] == "apps/v1" and service["apiVersion"] == "v1"
    # The mesh address other functions dial is <name>.<MESH_NAMESPACE default>:50052.
    name = deployment["metadata"]["name"]
    assert service["metadata"]["name"] == name
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "openfx-fn"
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    [container] = pod["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": 50051, "mesh": 50052}
    assert {(p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {(50051, "grpc"), (50052, "mesh")}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50051, f"{probe} must use the gRPC health service"
    assert "lifecycle" not in container, "no preStop hook: the watcher drains on SIGTERM"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert go_seconds(env["DRAIN_TIMEOUT"]) < pod["spec"]["terminationGracePeriodSeconds"]
    # The non-root user is the image's; a read-only root needs a writable /tmp for the lock.
    image_user = next(text for keyword, text in instructions(REPO / "Dockerfile.swift-runtime") if keyword == "USER")
    assert pod["spec"]["securityContext"]["runAsUser"] == int(image_user)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert any(mount["mountPath"] == "/tmp" for mount in container["volumeMounts"])
    # Its settings are ones the watcher accepts: a watcher started with them gets ready and
    # serves the named handler.
    watcher = start_watcher(env=env)
    assert f"handler={env['HANDLER_NAME']}" in watcher.log or env["HANDLER_NAME"] in watcher.log
