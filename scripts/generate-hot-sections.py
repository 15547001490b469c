#!/usr/bin/env python3
"""Regenerates Linking/hot-sections.order: the code sections a function runs from exec to idle,
through calls, for the linker to place together (see the README's "Hot code first").

Builds the OpenFx template's echo function as the benchmark does (static stdlib, one section per
function, the linker writing its map), runs it under valgrind's callgrind on loopback — start,
the warm-up, calls of 5 B, 64 KiB and 1 MiB on several connections, idle, SIGTERM and drain —
and writes the name of every input section of the output .text in which an instruction ran:
first those that ran once the watcher gave the start's pages back (ReadOnlySegments; callgrind
dumps its counts as that begins: the second warm-up, calls, idle), then those only the start
ran, then those only the shutdown ran, each group sorted. The kernel faults 64 KiB around each
page touched after the pages are given back: with the start-only code apart, those pages hold
code that calls run. Sections named plain `.text` (objects built without function sections:
parts of the static Swift runtime, libdispatch) cannot be named apart, so they are left where
they are.

Run it after changes to what a call or the start-up runs (a stale file still links: names it
lists that no longer exist are ignored, new code is just not placed first); the runtime image's
test checks that the file still covers its build. The callgrind run takes about a minute.

Usage:
  python3 scripts/generate-hot-sections.py
Needs: valgrind and h2load (nghttp2-client).
"""

import bisect
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Benchmarks"))
import watchers  # noqa: E402  (the benchmark's template build, server and h2load helpers)

ORDER_FILE = REPO / "Linking" / "hot-sections.order"
GLOB_CHARACTERS = set("*?[")  # gold reads these in an ordering file as patterns
# The function that gives the start's pages back (ReadOnlySegments.releaseResidentPages), as
# callgrind matches it: the end of the start.
RELEASE_FUNCTION = "*ReadOnlySegments*releaseResidentPages*"


def placed_text_sections(link_map):
    """(address, size, name, input file) of each input section the linker placed in the output
    .text, from gold's map (a section whose name is long has its address, size and file on the
    next line)."""
    sections, pending, in_text = [], None, False
    for line in Path(link_map).read_text(errors="replace").splitlines():
        if line.startswith("."):  # an output section's header
            in_text = line.split()[0] == ".text"
            continue
        if not in_text:
            continue
        fields = line.split()
        if line.startswith(" .") and len(fields) >= 4 and fields[1].startswith("0x"):
            sections.append((int(fields[1], 16), int(fields[2], 16), fields[0], fields[3]))
        elif line.startswith(" ."):
            pending = fields[0]
        elif pending and len(fields) >= 3 and fields[0].startswith("0x"):
            sections.append((int(fields[0], 16), int(fields[1], 16), pending, fields[2]))
            pending = None
    return sorted(section for section in sections if section[0] and section[1])


def executed_addresses(callgrind_output, object_name):
    """Addresses of the instructions that ran in `object_name`, from callgrind's output written
    with --dump-instr=yes --compress-pos=no --compress-strings=no."""
    current = None
    with open(callgrind_output) as lines:
        for line in lines:
            if line.startswith("ob="):
                current = line[3:].strip()
            elif line.startswith("0x") and current and current.endswith(object_name):
                yield int(line.split(maxsplit=1)[0], 16)


def check_function_sections(sections, build):
    """Raises unless the objects compiled in `build` have their code in sections of their own (a
    scratch path built before with other flags keeps its old objects: swift build does not
    recompile dependencies when only -Xswiftc flags change)."""
    own = [section for section in sections if section[3].startswith(str(build))]
    plain = sum(size for _, size, name, _ in own if name == ".text")
    if not own or plain > 0.05 * sum(size for _, size, _, _ in own):
        raise RuntimeError(f"{build} was not compiled with function sections: remove it and run again")


def hot_section_names(sections, addresses):
    """The names of the sections that hold any of `addresses`, but plain `.text`."""
    starts = [address for address, _, _, _ in sections]
    names = set()
    for address in addresses:
        index = bisect.bisect_right(starts, address) - 1
        if index >= 0 and address < starts[index] + sections[index][1]:
            names.add(sections[index][2])
    names.discard(".text")
    return names


def ordered_section_names(start, running, shutdown):
    """The sections that ran once the start's pages were given back first, then those only the
    start ran, then those only the shutdown ran; each group sorted by name."""
    return sorted(running) + sorted(start - running) + sorted(shutdown - running - start)


def varint(value):
    """`value` as a protobuf varint."""
    encoded = bytearray()
    while value >= 0x80:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(encoded + bytes([value]))


def framed_request(data):
    """A gRPC-framed pb.Request with `input` (field 1) set to `data`."""
    message = b"\x0a" + varint(len(data)) + data
    return b"\x00" + len(message).to_bytes(4, "big") + message


def dump_counts(server):
    """Has callgrind write the counts so far to a file of their own (`<output>.<n>`) and start
    counting afresh."""
    subprocess.run(["callgrind_control", "--dump", str(server.process.pid)], check=True, capture_output=True,
                   timeout=120)


def exercise(server, bodies, start_counts):
    """Waits for the lock file (start-up and warm-up done) and for the start's counts, which
    callgrind writes to `start_counts` as the watcher gives the start's pages back; then makes
    calls of each body on four connections, leaves the server idle for a moment and has
    callgrind dump the counts since."""
    deadline = time.monotonic() + 180
    while not (server.lock.exists() and start_counts.exists()):
        if time.monotonic() > deadline or server.process.poll() is not None:
            raise RuntimeError("the function did not start, or did not give its start-up pages back, under valgrind")
        time.sleep(0.1)
    time.sleep(5)  # the second warm-up, after the pages are given back (slow under valgrind)
    for body in bodies:
        with tempfile.NamedTemporaryFile(prefix="h2load-", suffix=".log") as log:
            subprocess.run(watchers.h2load(server, body, log.name, "-n", "64", "-c", "4", "-m", "4"),
                           check=True, capture_output=True, timeout=300)
            statuses = [line.split()[1] for line in Path(log.name).read_text().splitlines()]
        if statuses != ["200"] * 64:
            raise RuntimeError(f"calls failed under valgrind: {statuses}")
    time.sleep(2)
    dump_counts(server)


def main():
    link_map = watchers.WORK / "function.map"
    binary = watchers.build_template_function(link_map=link_map)
    # valgrind cannot read clang's DWARF 5; the symbols and addresses are what matter.
    profiled = watchers.WORK / "function-callgrind"
    subprocess.run(["strip", "--strip-debug", "-o", str(profiled),
                    str(watchers.TEMPLATE_FUNCTION_BUILD / "release" / "Function")], check=True)
    sections = placed_text_sections(link_map)
    check_function_sections(sections, watchers.TEMPLATE_FUNCTION_BUILD)

    with tempfile.TemporaryDirectory() as scratch:
        bodies = []
        for size in (5, 64 * 1024, 1024 * 1024):
            bodies.append(Path(scratch) / f"body-{size}")
            bodies[-1].write_bytes(framed_request(b"x" * size))
        # Dumps: .1 the start, up to the pages given back; .2 the second warm-up, calls and idle;
        # at exit the shutdown.
        output = Path(scratch) / "callgrind.out"
        dumps = [output.with_name(output.name + ".1"), output.with_name(output.name + ".2"), output]
        server = watchers.Server("function", ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no",
                                              "--compress-strings=no", f"--dump-before={RELEASE_FUNCTION}",
                                              f"--callgrind-out-file={output}", str(profiled)])
        try:
            exercise(server, bodies, dumps[0])
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=300)  # callgrind writes its output as the process exits
        finally:
            server.stop()
        start, running, shutdown = (hot_section_names(sections, executed_addresses(path, profiled.name))
                                    for path in dumps)
        names = ordered_section_names(start, running, shutdown)
    odd = [name for name in names if GLOB_CHARACTERS & set(name)]
    if odd or not names:
        raise RuntimeError(f"no sections, or names gold would read as patterns: {odd[:5]}")
    ORDER_FILE.parent.mkdir(exist_ok=True)
    ORDER_FILE.write_text("".join(f"{name}\n" for name in names))
    print(f"{ORDER_FILE.relative_to(REPO)}: {len(names)} sections, {len(running)} run after the start "
          f"({binary.name} built with {link_map.name})")


if __name__ == "__main__":
    main()
