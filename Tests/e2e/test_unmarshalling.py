"""The `unmarshalling` example against the seed's Go original, built with Debian's golang-go
and run as an oracle over inputs generated here: replies must be identical byte for byte, and
the error Go returns (syntax or type) must be logged with the same text and the request id."""

import base64
import os
import random
import re
import struct
import subprocess

import grpc
import pytest

from conftest import REPO

ORACLE = REPO / "Tests" / "Oracles" / "unmarshalling" / "main.go"


@pytest.fixture(scope="module")
def go_oracle(tmp_path_factory):
    """Builds the Go original once; returns a function mapping inputs to (reply, error)."""
    work = tmp_path_factory.mktemp("go")
    binary = work / "unmarshalling-oracle"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(work / "gopath"), "GOCACHE": str(work / "cache"),
           "GOFLAGS": "-mod=mod"}
    env.pop("GOFLAGS")
    subprocess.run(["go", "build", "-o", str(binary), str(ORACLE)], check=True, env=env, timeout=300)

    def run(inputs):
        payload = b"".join(struct.pack(">I", len(data)) + data for data in inputs)
        result = subprocess.run([str(binary)], input=payload, capture_output=True, check=True, timeout=120)
        lines = result.stdout.decode().splitlines()
        assert len(lines) == len(inputs)
        pairs = []
        for line in lines:
            reply, _, error = line.partition(" ")
            pairs.append((base64.b64decode(reply).decode("utf-8"), base64.b64decode(error).decode("utf-8")))
        return pairs

    return run


def generated_inputs():
    rng = random.Random(1919)
    names = ['"battery sensor"', '""', '"온도 센서"', '"tab\\tand\\nnewline"', '"quote \\" slash \\/ back \\\\"',
             '"\\u0041\\u00e9\\u4e2d"', '"\\ud83d\\ude00 pair"', '"\\ud83d lone high"', '"\\ude00 lone low"',
             '"\\ud83d\\u0041 high then letter"', '"\\ud83d\\ud83d two highs"', '"\\u0000nul"', '"emoji 😀"',
             '"%v %+v {}"', "null", "5", "true", "[]", "{}", '["a"]', '{"x":1}']
    capacities = ["40", "0", "-0", "-40", "40.0", "40.5", "1e2", "1E2", "-1", "9223372036854775807",
                  "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "123456789012345678901234",
                  '"40"', "null", "true", "false", "[40]", "{}", "0.0", "-0.5e-3"]
    times = ['"2019-01-21T19:07:28Z"', '""', "null", "1548097648", '"\\u00e9t\\u00e9"', "[]"]
    keys = ["name", "NAME", "Name", "nAmE", "na\\u006de", "name ", "nam", "names", "Capacity", "CAPACITY", "capacitY",
            "Time", "TIME", "tIme", "unknown", ""]
    inputs = []
    for name in names:
        for capacity in capacities[:: 3 if name not in ('"battery sensor"', "null") else 1]:
            inputs.append(f'{{"name": {name}, "capacity": {capacity}, "time": "2019-01-21T19:07:28Z"}}'.encode())
    for capacity in capacities:
        for time_value in times:
            inputs.append(f'{{"capacity":{capacity},"time":{time_value}}}'.encode())
    for key in keys:
        inputs.append(f'{{"{key}": "v", "capacity": 7}}'.encode())
        inputs.append(f'{{"{key}": 12}}'.encode())
    inputs += [
        b'{"name":"first","name":"second"}', b'{"name":"first","NAME":"upper wins last"}',
        b'{"capacity":1,"capacity":"two","capacity":3}', b'{"capacity":"two","name":5,"time":true}',
        b'{"name":"kept","name":7}', b'{"name":null,"capacity":null,"time":null}', b'{"nested":{"name":"no"},"name":"yes"}',
        b'{"name":"a\xffb"}', b'{"name":"\xc3\x28 bad pair"}', b'{"name":"\xe2\x82 truncated"}', b'{"name":"\xed\xa0\x80 surrogate"}',
        b'{"name":"\xc0\x80 overlong"}', b'{"name":"\xf4\x90\x80\x80 too big"}', b'{"name":"\xf0\x9f\x98\x80 ok"}',
        b'{"na\xffme":"x"}', b'{"name":"x"}\n', b' \t\r\n{"name":"spaced"} \n', b'\xef\xbb\xbf{"name":"bom"}',
        b'{"name":"x"} trailing', b'{"name":"x"}{"name":"y"}', b'{"name":"x",}', b'{"name":"x"', b"", b"   ", b"null",
        b"[]", b'"string"', b"42", b"true", b"{}", b"[{}]", b"{'name':'single'}", b'{"name":"x"} // comment',
        b'{"capacity":NaN}', b'{"capacity":+1}', b'{"capacity":01}', b'{"capacity":1.}', b'{"capacity":.5}',
        b'{"capacity":-}', b'{"capacity":1e}', b'{"name":"ctrl\x01char"}', b'{"name":"tab\tchar"}', b'{"name":"\\x41"}',
        b'{"name":"\\u12"}', b'{"name":"\\u12G4"}', b'{name:"unquoted"}', b'{"name" "missing colon"}', b"nul", b"tru",
        b'{"name":"x"]', b'[1,2', b'{"a":[1,{"b":[true,false,null]}],"name":"deep"}',
    ]
    base = b'{"name": "battery sensor", "capacity": 40, "time": "2019-01-21T19:07:28Z"}'
    alphabet = b'{}[]:,"\\ 0123456789.eE+-tfnul\xff\xc3\x80aN'
    for _ in range(300):
        mutated = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(mutated) + 1)
            choice = rng.random()
            if choice < 0.4 and mutated:
                del mutated[min(position, len(mutated) - 1)]
            elif choice < 0.7:
                mutated.insert(position, rng.choice(alphabet))
            elif mutated:
                mutated[min(position, len(mutated) - 1)] = rng.choice(alphabet)
        inputs.append(bytes(mutated))
    return inputs


def test_replies_are_identical_to_the_go_original(start_watcher, pb, go_oracle):
    inputs = generated_inputs()
    expected = go_oracle(inputs)
    watcher = start_watcher(env={"HANDLER_NAME": "unmarshalling"})
    mismatches = []
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        stub = pb.services.FxWatcherStub(channel)
        for index, data in enumerate(inputs):
            reply = stub.Call(pb.messages.Request(input=data), timeout=10, metadata=[("x-request-id", f"u{index}")]).Output
            if reply != expected[index][0]:
                mismatches.append((data, reply, expected[index][0]))
    assert not mismatches, f"{len(mismatches)} of {len(inputs)} differ, e.g. {mismatches[:3]}"
    assert len(inputs) >= 500

    # The error goes to the log with the request id; Go's type errors have a fixed text.
    logged = {}
    for line in watcher.log.splitlines():
        match = re.search(r"request-id=u(\d+) \[Examples\] (.*)$", line)
        if match:
            logged[int(match.group(1))] = match.group(2)
    type_errors = 0
    for index, (_, error) in enumerate(expected):
        if not error:
            assert index not in logged, (inputs[index], logged[index])
            continue
        assert index in logged, (inputs[index], error)
        type_errors += "cannot unmarshal" in error
        assert logged[index] == error, (inputs[index], logged[index], error)
    assert type_errors >= 50


def test_the_seeds_example_call(start_watcher, call):
    watcher = start_watcher(env={"HANDLER_NAME": "unmarshalling"})
    reply = call(watcher.port, b'{"name": "battery sensor", "capacity": 40, "time": "2019-01-21T19:07:28Z"}\n')
    assert reply.Output == "{Name:battery sensor Capacity:40 Time:2019-01-21T19:07:28Z}"
