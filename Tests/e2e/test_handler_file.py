"""HANDLER_FILE: the prebuilt fxwatcher loads a handler library that a function author built
separately (Tests/Fixtures/handler-library, a package of its own depending on the watcher's
HandlerKitShared product), the way OpenFx's Go watcher loads a plugin."""

import grpc
import pytest

from conftest import BINARY, REPO


def library(handler_libraries, name):
    return str(handler_libraries / f"lib{name}.so")


def test_a_library_handler_serves_calls_with_its_errors_mapped_and_its_log_lines(
        start_watcher, call, handler_libraries):
    watcher = start_watcher(env={"HANDLER_FILE": library(handler_libraries, "Greeter")})
    assert call(watcher.port, b"Ada").Output == "Hello, Ada"
    assert call(watcher.mesh_port, "Jos\u00e9".encode()).Output == "Hello, Jos\u00e9"
    # A HandlerError thrown by the library is the caller's status: the library shares the
    # watcher's HandlerKit types, not a copy of its own.
    with pytest.raises(grpc.RpcError) as refused:
        call(watcher.port, b"")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "send a name"
    with pytest.raises(grpc.RpcError) as not_text:
        call(watcher.port, b"\xff\xfe")
    assert not_text.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Its logger is the watcher's, with the request's id.
    call(watcher.port, b"Grace", metadata=(("x-request-id", "lib-42"),))
    assert "greeting from a handler library" in watcher.log and "lib-42" in watcher.log
    assert "handler=greeter" in watcher.log


def test_handler_name_picks_among_the_library_handlers(start_watcher, call, handler_libraries):
    watcher = start_watcher(env={"HANDLER_FILE": library(handler_libraries, "Greeter"), "HANDLER_NAME": "shout"})
    assert call(watcher.port, b"quiet please").Output == "QUIET PLEASE"
    # The library's own error type chooses its status through HandlerErrorConvertible.
    with pytest.raises(grpc.RpcError) as missing:
        call(watcher.port, b"stock:apples")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND and missing.value.details() == "no apples left"
    # OpenFx's default name means the library's default handler.
    default = start_watcher(env={"HANDLER_FILE": library(handler_libraries, "Greeter"), "HANDLER_NAME": "Handler"})
    assert call(default.port, b"Ada").Output == "Hello, Ada"


def test_list_handlers_lists_the_library_handlers(handler_libraries):
    import subprocess

    listed = subprocess.run([str(BINARY), "--list-handlers", "--handler-file", library(handler_libraries, "Greeter")],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["greeter", "shout", "unconfigured"]


def refused(start_watcher, env):
    watcher = start_watcher(env=env, wait=False)
    assert watcher.wait_exit() == 64, watcher.log
    assert not watcher.lock.exists()
    return watcher.log


def test_unusable_handler_files_stop_the_watcher_with_a_clear_reason(start_watcher, handler_libraries, tmp_path):
    missing = tmp_path / "libmissing.so"
    assert "cannot load the handler library" in refused(start_watcher, {"HANDLER_FILE": str(missing)})
    assert "No such file or directory" in refused(start_watcher, {"HANDLER_FILE": str(missing)})
    assert "not a regular file" in refused(start_watcher, {"HANDLER_FILE": str(tmp_path)})

    text = tmp_path / "libtext.so"
    text.write_text("def handle(req): return req\n")  # a Python handler file is not a library
    log = refused(start_watcher, {"HANDLER_FILE": str(text)})
    assert "not a loadable shared library" in log and str(text) in log

    log = refused(start_watcher, {"HANDLER_FILE": library(handler_libraries, "NoEntryPoint")})
    assert "not a handler library" in log and "fxwatcher_handler_library" in log

    log = refused(start_watcher, {"HANDLER_FILE": library(handler_libraries, "FutureInterface")})
    assert "built against HandlerKit interface version 999" in log and "rebuild it" in log


def test_library_handler_names_and_factory_errors_are_reported(start_watcher, handler_libraries):
    lib = library(handler_libraries, "Greeter")
    log = refused(start_watcher, {"HANDLER_FILE": lib, "HANDLER_NAME": "whisper"})
    assert 'unknown handler "whisper"' in log and "greeter, shout, unconfigured" in log
    # A factory's thrown error stops the start with its message.
    log = refused(start_watcher, {"HANDLER_FILE": lib, "HANDLER_NAME": "unconfigured"})
    assert "GREETING is not set" in log
