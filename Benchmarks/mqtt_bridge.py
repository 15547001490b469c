#!/usr/bin/env python3
"""The MQTT bridge, side by side with the seed's design, in one run: a paho-mqtt device sends
requests through Debian's mosquitto to a bridge, which calls a release `fxwatcher` (echo) and
publishes the reply the device waits for.

Bridges compared:
- `fxmqtt-bridge` (release) at QoS 1 (the default: acknowledged after the reply) and QoS 0;
- the seed's `gRPC_Broker.py` design in Python: paho-mqtt, QoS 0, a new gRPC channel and a
  `pb.FxGateway/Invoke` per message, one at a time (it printed the reply; here it publishes it
  on `<topic>/reply` so the device can time it).

The broker runs with `set_tcp_nodelay true` and the device with TCP_NODELAY: with Nagle on
either, a QoS 1 request/reply waits ~40 ms for a delayed ACK outside any bridge. The broker
also runs with `max_queued_messages 0`: by default mosquitto drops QoS 1 messages queued for a
client beyond 1,000, and the burst waits at the broker for the bridge.

Printed per bridge: sequential round trip p50/p99 (one request at a time), throughput (a burst
of requests published at once, until every reply is back), the bridge's CPU per message and
its RSS after the run.

Usage: .build-venv/bin/python Benchmarks/mqtt_bridge.py [--sequential 300] [--burst 2000]
Build first: swift build -c release --product fxwatcher && swift build -c release --product fxmqtt-bridge
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))

from conftest import free_port  # noqa: E402
from mqtt_peers import Broker, Device, wait_until  # noqa: E402

SEED_BRIDGE = '''
import os, sys
import grpc
import paho.mqtt.client as mqtt
sys.path.insert(0, sys.argv[3])
import fxgateway_pb2, fxgateway_pb2_grpc
topic_name = os.getenv("topic", "gRPC")
gateway_url = sys.argv[2]

def on_connect(client, userdata, flags, reason_code, properties):
    client.subscribe(topic_name)
    print("subscribed", flush=True)

def on_message(client, userdata, msg):
    if msg.topic.endswith("/reply"):
        return
    channel = grpc.insecure_channel(gateway_url)
    stub = fxgateway_pb2_grpc.FxGatewayStub(channel)
    request = fxgateway_pb2.InvokeServiceRequest(Service=sys.argv[1], Input=msg.payload)
    r = stub.Invoke(request)
    channel.close()
    client.publish(msg.topic + "/reply", r.Msg)

client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.on_connect = on_connect
client.on_message = on_message
client.connect("127.0.0.1", int(os.environ["MQTT_PORT"]))
client.loop_forever()
'''


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure(name, process, broker, topic, sequential, burst, qos):
    device = Device(broker.port, [f"{topic}/reply"])
    # paho leaves Nagle on: a device's PUBACK would then hold back its next request for the
    # broker's delayed ACK (~40 ms), which would be measured instead of the bridge.
    device.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        device.publish(topic, b"warm-up", qos=qos)
        device.wait_for(1, timeout=30)
        latencies = []
        for i in range(sequential):
            started = time.perf_counter()
            device.publish(topic, f"s{i}".encode(), qos=qos)
            device.wait_for(2 + i, timeout=30)
            latencies.append((time.perf_counter() - started) * 1000)
        before = cpu_seconds(process.pid)
        received = len(device.received)
        started = time.perf_counter()
        for i in range(burst):
            device.client.publish(topic, f"b{i}".encode(), qos=qos)
        device.wait_for(received + burst, timeout=600)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(process.pid) - before
        latencies.sort()
        return {
            "name": name, "p50": statistics.median(latencies), "p99": latencies[int(len(latencies) * 0.99) - 1],
            "rate": burst / elapsed, "cpu_us": cpu / burst * 1e6, "rss": rss_kib(process.pid),
        }
    finally:
        device.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--watcher", default=str(REPO / ".build" / "release" / "fxwatcher"))
    parser.add_argument("--bridge", default=str(REPO / ".build" / "release" / "fxmqtt-bridge"))
    args = parser.parse_args()
    from grpc_tools import protoc

    results = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        status = protoc.main(["protoc", f"-I{REPO / 'Protos'}", f"--python_out={work}", f"--grpc_python_out={work}",
                              str(REPO / "Protos" / "fxwatcher.proto"), str(REPO / "Protos" / "fxgateway.proto")])
        assert status == 0
        (work / "seed_bridge.py").write_text(SEED_BRIDGE)
        # Mosquitto's default leaves Nagle on: at QoS 1 a reply then waits for the device's
        # delayed ACK of the broker's PUBACK (~40 ms a message). A request/reply broker sets this.
        # It also drops QoS 1 messages queued for a client beyond 1,000 by default: the burst
        # is held for the bridge, which acknowledges only after replying.
        broker_port = free_port()
        (work / "mosquitto.conf").write_text(
            f"listener {broker_port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
            "max_queued_messages 0\n")
        broker = Broker(broker_port, work / "mosquitto.log", config=work / "mosquitto.conf")
        broker.start()
        port, lock = free_port(), work / "lock"
        watcher = subprocess.Popen([args.watcher], env={
            "PATH": os.environ["PATH"], "WATCHER_HOST": "127.0.0.1", "WATCHER_PORT": str(port), "MESH_PORT": "0",
            "LOCK_FILE": str(lock), "FUNCTION_NAME": "echo"}, stderr=subprocess.DEVNULL)
        try:
            wait_until(lock.exists, 30, "the watcher did not start")
            cases = [
                ("fxmqtt-bridge, QoS 1", [args.bridge], {"MQTT_QOS": "1"}, 1),
                ("fxmqtt-bridge, QoS 0", [args.bridge], {"MQTT_QOS": "0"}, 0),
                ("seed gRPC_Broker.py design, QoS 0",
                 [sys.executable, str(work / "seed_bridge.py"), "echo", f"127.0.0.1:{port}", str(work)], {}, 0),
            ]
            for index, (name, command, settings, qos) in enumerate(cases):
                topic = f"bench{index}"
                log = work / f"bridge{index}.log"
                env = {"PATH": os.environ["PATH"], "MQTT_PORT": str(broker.port), "FX_TARGET": f"127.0.0.1:{port}",
                       "MQTT_TOPIC": topic, "topic": topic, "MQTT_CLIENT_ID": f"bench-{index}", **settings}
                with open(log, "wb") as output:
                    process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
                try:
                    wait_until(lambda: "subscribed" in log.read_text(errors="replace"), 30, f"{name} did not start")
                    results.append(measure(name, process, broker, topic, args.sequential, args.burst, qos))
                finally:
                    process.terminate()
                    process.wait(timeout=30)
        finally:
            watcher.terminate()
            watcher.wait(timeout=30)
            broker.stop()

    print(f"device → mosquitto → bridge → fxwatcher (echo) → bridge → mosquitto → device; "
          f"{args.sequential} sequential, burst of {args.burst}")
    print(f"{'bridge':<36} {'p50 ms':>8} {'p99 ms':>8} {'msgs/s':>9} {'CPU µs/msg':>11} {'RSS MiB':>8}")
    for r in results:
        print(f"{r['name']:<36} {r['p50']:8.2f} {r['p99']:8.2f} {r['rate']:9.0f} {r['cpu_us']:11.0f} "
              f"{r['rss'] / 1024:8.1f}")
    seed = results[-1]
    for r in results[:-1]:
        print(f"{r['name']} vs seed: {r['rate'] / seed['rate']:.1f}x throughput, "
              f"{seed['p50'] / r['p50']:.1f}x lower p50")


if __name__ == "__main__":
    main()
