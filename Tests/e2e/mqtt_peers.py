"""Peers of the MQTT bridge tests: Debian's real `mosquitto` broker, `paho-mqtt` devices, the
`fxmqtt-bridge` binary, and a scripted broker for what a real one never sends (malformed
packets, refusals)."""

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from conftest import REPO, accepts

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
BRIDGE_BINARY = Path(os.environ.get("FXMQTT_BRIDGE_BIN", REPO / ".build" / "debug" / "fxmqtt-bridge"))


def wait_until(condition, timeout, message):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"after {timeout}s: {message()}" if callable(message) else f"after {timeout}s: {message}")


class Broker:
    """A mosquitto started by the test on a loopback port (mosquitto 2 with no configuration
    listens on loopback only, anonymous)."""

    def __init__(self, port, log_path, config=None):
        self.port, self.log_path, self.config, self.process = port, log_path, config, None

    def start(self):
        arguments = ["-c", str(self.config)] if self.config else ["-p", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-v", *arguments], stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: accepts(self.port), 10, "mosquitto does not accept connections")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class BridgeProcess:
    """One `fxmqtt-bridge` started by a test, stopped only by its own PID."""

    def __init__(self, process, log_path):
        self.process, self.log_path = process, log_path

    @property
    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text, count=1, timeout=20):
        wait_until(lambda: self.log.count(text) >= count or self.process.poll() is not None, timeout,
                   lambda: f"no {count}x {text!r} in the bridge log:\n{self.log}")
        assert self.log.count(text) >= count, f"bridge exited with {self.process.returncode}:\n{self.log}"

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class Device:
    """An IoT device: a paho-mqtt 2.2 client that publishes requests and collects what arrives
    on the topics it subscribes to (resubscribing after every reconnect)."""

    def __init__(self, port, subscriptions):
        self.received = []
        self.condition = threading.Condition()
        self.subscriptions = subscriptions
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"device-{id(self)}")
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the device could not subscribe"

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)

    def _on_message(self, client, userdata, message):
        with self.condition:
            self.received.append((message.topic, message.payload))
            self.condition.notify_all()

    def publish(self, topic, payload, qos=1):
        info = self.client.publish(topic, payload, qos=qos)
        if qos > 0:
            info.wait_for_publish(timeout=10)
            assert info.is_published(), f"the broker did not acknowledge the publish on {topic}"

    def wait_for(self, count, timeout=30, topic=None):
        """The messages received (on `topic`, if given) once there are `count` of them."""

        def matching():
            return [(t, p) for t, p in self.received if topic is None or t == topic]

        deadline = time.monotonic() + timeout
        with self.condition:
            while len(matching()) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{len(matching())} of {count} messages after {timeout}s: {self.received[-5:]}"
                self.condition.wait(remaining)
            return matching()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def read_packet(connection):
    """One MQTT packet from a socket: (first byte, body), or None when the peer closed."""
    header = connection.recv(1)
    if not header:
        return None
    length, shift = 0, 0
    while True:
        byte = connection.recv(1)
        if not byte:
            return None
        length |= (byte[0] & 0x7F) << shift
        shift += 7
        if byte[0] < 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = connection.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return header[0], body


def accept_and_subscribe(connection, connack=b"\x20\x02\x00\x00"):
    """Reads the CONNECT, sends `connack`, and when it accepts, answers the SUBSCRIBE; returns
    whether the bridge is now subscribed."""
    if read_packet(connection) is None:
        return False
    connection.sendall(connack)
    if connack[3] != 0:
        return False
    packet = read_packet(connection)
    if packet is None or packet[0] != 0x82:
        return False
    connection.sendall(b"\x90\x03" + packet[1][:2] + b"\x01")
    return True


class ScriptedBroker:
    """A TCP server on loopback that plays `session(connection, number)` with each connection
    the bridge makes (numbered from 1): for what a real broker never does (malformed packets,
    refusals, silence, losing a connection at a chosen moment)."""

    def __init__(self, session):
        self.session = session
        self.connections = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.server.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @classmethod
    def sending(cls, after_subscribe=b"", connack=b"\x20\x02\x00\x00"):
        """A broker that answers CONNECT with `connack`, then SUBSCRIBE, sends `after_subscribe`
        and closes."""

        def session(connection, number):
            if accept_and_subscribe(connection, connack):
                connection.sendall(after_subscribe)
                time.sleep(0.05)

        return cls(session)

    def _serve(self):
        while not self.stopped.is_set():
            try:
                connection, _ = self.server.accept()
            except socket.timeout:
                continue
            self.connections += 1
            with connection:
                connection.settimeout(5)
                try:
                    self.session(connection, self.connections)
                except OSError:
                    continue

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=10)
        self.server.close()
