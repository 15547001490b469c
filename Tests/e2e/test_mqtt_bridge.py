"""The MQTT bridge (`fxmqtt-bridge`) between paho-mqtt devices, a real mosquitto broker and a
real `fxwatcher`, as in the seed's gRPC_Broker.py example, and its behaviour when the broker
or the function misbehaves."""

import getpass
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import free_port
from mqtt_peers import (BRIDGE_BINARY, MOSQUITTO_PASSWD, Broker, BridgeProcess, Device, ScriptedBroker, accept_and_subscribe, read_packet,
                        wait_until)


@pytest.fixture
def broker(tmp_path):
    broker = Broker(free_port(), tmp_path / "mosquitto.log")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def start_bridge(tmp_path):
    """Starts `fxmqtt-bridge` with the given environment and arguments; returns a BridgeProcess
    (waiting for its subscription unless wait=False)."""
    started = []

    def start(env, args=(), wait=True):
        log_path = tmp_path / f"bridge-{len(started)}.log"
        environment = {"PATH": os.environ.get("PATH", ""), "MQTT_CLIENT_ID": f"bridge-{len(started)}"}
        environment.update(env)
        with open(log_path, "wb") as log:
            process = subprocess.Popen([str(BRIDGE_BINARY), *args], env=environment, stdout=log,
                                       stderr=subprocess.STDOUT)
        bridge = BridgeProcess(process, log_path)
        started.append(bridge)
        if wait:
            bridge.wait_for_log("subscribed to")
        return bridge

    yield start
    for bridge in started:
        bridge.stop()


@pytest.fixture
def devices():
    opened = []

    def open_device(port, subscriptions):
        device = Device(port, subscriptions)
        opened.append(device)
        return device

    yield open_device
    for device in opened:
        device.close()


def bridge_env(broker, watcher, **settings):
    env = {"MQTT_PORT": str(broker.port), "FX_TARGET": f"127.0.0.1:{watcher.port}"}
    env.update({key: str(value) for key, value in settings.items()})
    return env


@pytest.mark.parametrize("qos", [0, 1])
def test_a_device_gets_the_echo_functions_reply_at_qos(qos, broker, start_watcher, start_bridge, devices):
    watcher = start_watcher()
    # The seed's command line: gRPC_Broker.py <topic> <function>.
    start_bridge(bridge_env(broker, watcher, MQTT_QOS=qos), args=["test", "echo"])
    device = devices(broker.port, ["test/reply", "test/error"])
    sent = [f"hello {i} 안녕".encode() for i in range(5)]
    for payload in sent:
        device.publish("test", payload, qos=qos)
    replies = device.wait_for(5)
    assert sorted(replies) == sorted(("test/reply", payload) for payload in sent)


def test_the_originals_topic_variable_and_the_gateways_invoke_work(broker, start_watcher, start_bridge, devices):
    watcher = start_watcher(env={"FUNCTION_NAME": "echo"})
    start_bridge(bridge_env(broker, watcher, topic="gRPC-topic", FX_METHOD="invoke", FX_FUNCTION="echo"))
    device = devices(broker.port, ["gRPC-topic/reply"])
    device.publish("gRPC-topic", b"through pb.FxGateway/Invoke")
    assert device.wait_for(1) == [("gRPC-topic/reply", b"through pb.FxGateway/Invoke")]


def test_binary_payloads_pass_untouched_with_call_bytes(broker, start_watcher, start_bridge, devices):
    watcher = start_watcher()
    start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="frames", FX_METHOD="call-bytes"))
    device = devices(broker.port, ["frames/reply"])
    payload = bytes(range(256)) * 40
    device.publish("frames", payload)
    assert device.wait_for(1) == [("frames/reply", payload)]


def test_a_thousand_qos1_messages_arrive_once_each(broker, start_watcher, start_bridge, devices):
    watcher = start_watcher()
    start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="load"))
    device = devices(broker.port, ["load/reply", "load/error"])
    sent = [f"message {i:04d}".encode() for i in range(1000)]
    for payload in sent:
        device.client.publish("load", payload, qos=1)
    replies = device.wait_for(1000, timeout=120)
    assert sorted(payload for _, payload in replies) == sent
    assert {topic for topic, _ in replies} == {"load/reply"}
    # Nothing more trickles in: no duplicates.
    device.publish("load", b"last")
    device.wait_for(1001)
    assert len(device.received) == 1001


def test_the_bridge_reconnects_and_resubscribes_after_a_broker_restart(broker, start_watcher, start_bridge,
                                                                       devices):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep"})
    bridge = start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="stream", MQTT_KEEPALIVE="2s"))
    device = devices(broker.port, ["stream/reply", "stream/error"])
    for i in range(20):
        device.publish("stream", f"0:before {i}".encode())
    device.wait_for(20)
    # A call in flight while the broker goes away: its reply is published on the next connection.
    device.publish("stream", b"1500:in flight")
    wait_until(lambda: broker.log_path.read_text(errors="replace").count("Sending PUBLISH to bridge-0") >= 21, 5,
               "the message did not reach the bridge")
    device.subscribed.clear()
    broker.stop()
    bridge.wait_for_log("reconnecting")
    broker.start()
    bridge.wait_for_log("subscribed to stream", count=2)
    assert device.subscribed.wait(10), "the device did not resubscribe"
    for i in range(20):
        device.publish("stream", f"0:after {i}".encode())
    replies = device.wait_for(41, timeout=30)
    payloads = [payload for _, payload in replies]
    assert sorted(payloads) == sorted(
        [f"before {i}".encode() for i in range(20)] + [b"in flight"] + [f"after {i}".encode() for i in range(20)])
    assert bridge.process.poll() is None


def test_a_slow_function_loses_nothing_and_calls_stay_within_the_limit(broker, start_watcher, start_bridge,
                                                                      devices):
    # The watcher refuses a third concurrent call: a bridge over its limit would show errors.
    watcher = start_watcher(env={"HANDLER_NAME": "sleep", "MAX_INFLIGHT": "2"})
    start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="slow", BRIDGE_MAX_INFLIGHT=2))
    device = devices(broker.port, ["slow/reply", "slow/error"])
    for i in range(12):
        device.client.publish("slow", f"200:reply {i}".encode(), qos=1)
    replies = device.wait_for(12, timeout=60)
    assert sorted(replies) == sorted(("slow/reply", f"reply {i}".encode()) for i in range(12))


def test_a_call_over_the_bridges_deadline_is_reported_on_the_error_topic(broker, start_watcher, start_bridge,
                                                                         devices):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep"})
    start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="late", FX_TIMEOUT="300ms"))
    device = devices(broker.port, ["late/reply", "late/error"])
    device.publish("late", b"3000:too late")
    [(topic, payload)] = device.wait_for(1)
    assert topic == "late/error" and payload.startswith(b"DEADLINE_EXCEEDED: ")


def test_a_failing_function_publishes_errors_and_never_stops_the_bridge(broker, start_watcher, start_bridge,
                                                                        devices):
    watcher = start_watcher(env={"HANDLER_NAME": "fail"})
    bridge = start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="bad"))
    device = devices(broker.port, ["bad/reply", "bad/error"])
    for i in range(20):
        device.publish("bad", f"invalidArgument:bad input {i}".encode())
    device.publish("bad", b"plain failure")
    errors = device.wait_for(21)
    assert {topic for topic, _ in errors} == {"bad/error"}
    assert sorted(payload for _, payload in errors) == sorted(
        [f"INVALID_ARGUMENT: bad input {i}".encode() for i in range(20)] + [b"UNKNOWN: plain failure"])
    assert bridge.process.poll() is None


def test_an_unreachable_function_is_unavailable_and_the_bridge_recovers_when_it_comes(broker, start_watcher,
                                                                                      start_bridge, devices):
    port = free_port()
    start_bridge({"MQTT_PORT": str(broker.port), "FX_TARGET": f"127.0.0.1:{port}", "MQTT_TOPIC": "gone"})
    device = devices(broker.port, ["gone/reply", "gone/error"])
    device.publish("gone", b"anyone?")
    [(topic, payload)] = device.wait_for(1)
    assert topic == "gone/error" and payload.startswith(b"UNAVAILABLE: ")
    start_watcher(port=port)
    # The bridge's connection backoff is at most about two seconds: ask until it answers.
    deadline = time.monotonic() + 30
    while not [m for m in device.received if m[0] == "gone/reply"]:
        assert time.monotonic() < deadline, f"no reply after the function came: {device.received[-3:]}"
        device.publish("gone", b"now")
        time.sleep(0.5)
    assert all(p.startswith(b"UNAVAILABLE: ") for t, p in device.received if t == "gone/error")


def test_an_oversized_payload_gets_an_error_and_is_not_passed_on(broker, start_watcher, start_bridge, devices):
    watcher = start_watcher()
    start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="big", MQTT_MAX_PAYLOAD="1KiB"))
    device = devices(broker.port, ["big/reply", "big/error"])
    device.publish("big", b"x" * 1500)  # over the limit, under the parser's packet bound
    device.publish("big", b"y" * 200_000)  # over both: skipped as it arrives
    device.publish("big", b"small")
    messages = device.wait_for(3)
    errors = sorted(payload for topic, payload in messages if topic == "big/error")
    assert len(errors) == 2 and all(e.startswith(b"RESOURCE_EXHAUSTED: ") and b"1024-byte limit" in e for e in errors)
    assert ("big/reply", b"small") in messages


def test_devices_get_reply_topics_of_their_own_and_replies_never_loop(broker, start_watcher, start_bridge, devices):
    watcher = start_watcher()
    bridge = start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="devices/#", LOG_LEVEL="debug"))
    observer = devices(broker.port, ["devices/#"])
    observer.publish("devices/d1", b"from d1")
    observer.publish("devices/d2", b"from d2")
    # The replies match the bridge's own subscription: it sees them and leaves them alone.
    bridge.wait_for_log("it is a reply or error topic of this bridge", count=2)
    time.sleep(0.5)
    assert sorted(observer.received) == sorted([
        ("devices/d1", b"from d1"), ("devices/d2", b"from d2"),
        ("devices/d1/reply", b"from d1"), ("devices/d2/reply", b"from d2"),
    ])
    d3 = devices(broker.port, ["devices/d3/reply"])
    d3.publish("devices/d3", b"mine")
    assert d3.wait_for(1) == [("devices/d3/reply", b"mine")]


def test_sigterm_lets_received_messages_be_answered_then_exits_zero(broker, start_watcher, start_bridge, devices):
    watcher = start_watcher(env={"HANDLER_NAME": "sleep"})
    bridge = start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="drain"))
    device = devices(broker.port, ["drain/reply"])
    device.publish("drain", b"800:answered while draining")
    wait_until(lambda: "Sending PUBLISH to bridge-0" in broker.log_path.read_text(errors="replace"), 5,
               "the message did not reach the bridge")
    time.sleep(0.2)
    bridge.process.send_signal(signal.SIGTERM)
    assert device.wait_for(1) == [("drain/reply", b"answered while draining")]
    assert bridge.process.wait(timeout=20) == 0
    assert "disconnected from" in bridge.log


def test_the_bridge_waits_for_a_broker_that_is_not_there_yet(tmp_path, start_watcher, start_bridge, devices):
    broker = Broker(free_port(), tmp_path / "late-mosquitto.log")
    watcher = start_watcher()
    bridge = start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="later"), wait=False)
    bridge.wait_for_log("failed: ", count=2)
    broker.start()
    try:
        bridge.wait_for_log("subscribed to later", timeout=60)
        device = devices(broker.port, ["later/reply"])
        device.publish("later", b"finally")
        assert device.wait_for(1) == [("later/reply", b"finally")]
    finally:
        broker.stop()


@pytest.mark.parametrize("garbage, reason", [
    (b"\xf0\x00", "type 15 is reserved"),
    (b"\x30\x03\x00\x01\xff", "not valid UTF-8"),
    (b"\x40\x02\x00\x00", "packet identifier 0"),
    (b"\x90\xff\xff\xff\x7f", "over the"),
    (b"\x20\x02\x00\x00", "a broker never sends"),
    (b"\x31\xff\xff\xff\xff\x01", "runs over 4 bytes"),
])
def test_malformed_packets_from_a_broker_are_logged_and_the_bridge_reconnects(garbage, reason, start_watcher,
                                                                              start_bridge):
    scripted = ScriptedBroker.sending(after_subscribe=garbage)
    try:
        watcher = start_watcher()
        bridge = start_bridge({"MQTT_PORT": str(scripted.port), "FX_TARGET": f"127.0.0.1:{watcher.port}"})
        bridge.wait_for_log(reason)
        wait_until(lambda: scripted.connections >= 3, 20, "the bridge did not reconnect twice")
        assert bridge.process.poll() is None
        assert "protocol error" in bridge.log
    finally:
        scripted.close()


def test_a_broker_refusing_the_credentials_stops_the_bridge_with_the_reason(start_bridge):
    scripted = ScriptedBroker.sending(connack=b"\x20\x02\x00\x05")
    try:
        bridge = start_bridge({"MQTT_PORT": str(scripted.port), "MQTT_USERNAME": "fx", "MQTT_PASSWORD": "wrong"},
                              wait=False)
        assert bridge.process.wait(timeout=20) == 1
        assert "refused the connection: return code 5 (not authorized)" in bridge.log
    finally:
        scripted.close()


def test_a_broker_that_is_unavailable_is_retried(start_bridge):
    scripted = ScriptedBroker.sending(connack=b"\x20\x02\x00\x03")
    try:
        bridge = start_bridge({"MQTT_PORT": str(scripted.port)}, wait=False)
        wait_until(lambda: scripted.connections >= 3, 20, "the bridge did not retry")
        assert bridge.process.poll() is None
        assert "return code 3 (server unavailable)" in bridge.log
    finally:
        scripted.close()


@pytest.mark.parametrize("env, message", [
    ({"MQTT_QOS": "2"}, "invalid MQTT_QOS \"2\": expected 0 or 1"),
    ({"MQTT_TOPIC": "a/#/b"}, "invalid MQTT_TOPIC"),
    ({"FX_TARGET": "nowhere"}, "invalid FX_TARGET"),
    ({"REPLY_TOPIC": "{topic}"}, "invalid REPLY_TOPIC"),
])
def test_bad_settings_exit_64_naming_the_variable(env, message, start_bridge):
    bridge = start_bridge(env, wait=False)
    assert bridge.process.wait(timeout=20) == 64
    assert message in bridge.log


def test_an_unacknowledged_reply_is_resent_with_dup_and_the_request_acknowledged_only_after_it(
        start_watcher, start_bridge):
    seen = {}

    def session(connection, number):
        if number == 1 and accept_and_subscribe(connection):
            # A QoS 1 request; the reply is read but not acknowledged, then the connection drops.
            connection.sendall(b"\x32\x09\x00\x01t\x00\x07ping")
            seen["first"] = read_packet(connection)
            connection.settimeout(0.5)
            try:
                seen["then"] = read_packet(connection)
            except socket.timeout:
                seen["then"] = "nothing"
        elif number == 2:
            # The bridge resends and resubscribes, in either order.
            read_packet(connection)
            connection.sendall(b"\x20\x02\x00\x00")
            for _ in range(2):
                header, body = read_packet(connection)
                if header == 0x82:
                    connection.sendall(b"\x90\x03" + body[:2] + b"\x01")
                else:
                    seen["resent"] = (header, body)
                    connection.sendall(b"\x40\x02" + body[9:11])
            time.sleep(1)

    scripted = ScriptedBroker(session)
    try:
        watcher = start_watcher()
        bridge = start_bridge({"MQTT_PORT": str(scripted.port), "FX_TARGET": f"127.0.0.1:{watcher.port}",
                               "MQTT_TOPIC": "t"})
        wait_until(lambda: "resent" in seen, 20, lambda: f"no second connection: {seen}\n{bridge.log}")
    finally:
        scripted.close()
    header, body = seen["first"]
    assert header == 0x32 and body[:9] == b"\x00\x07t/reply" and body[11:] == b"ping"
    # The request (packet 7) is not acknowledged while its reply is not.
    assert seen["then"] in ("nothing", None) or seen["then"][0] != 0x40
    resent_header, resent_body = seen["resent"]
    assert resent_header == 0x3A, "the reply is resent with DUP set"
    assert resent_body == body, "with the same packet id, topic and payload"
    assert "resending 1 unacknowledged QoS 1 publishes" in bridge.log


def test_a_silent_broker_is_detected_by_keepalive(start_bridge):
    def session(connection, number):
        if accept_and_subscribe(connection):
            deadline = time.monotonic() + 10
            connection.settimeout(0.2)
            while time.monotonic() < deadline:  # reads PINGREQs, never answers
                try:
                    if read_packet(connection) is None:
                        return
                except socket.timeout:
                    continue

    scripted = ScriptedBroker(session)
    try:
        bridge = start_bridge({"MQTT_PORT": str(scripted.port), "MQTT_KEEPALIVE": "1s"})
        bridge.wait_for_log("no PINGRESP within 1.0 s")
        wait_until(lambda: scripted.connections >= 2, 20, "the bridge did not reconnect")
    finally:
        scripted.close()


def test_keepalive_pings_a_real_broker_and_the_connection_stays(broker, start_watcher, start_bridge, devices):
    watcher = start_watcher()
    bridge = start_bridge(bridge_env(broker, watcher, MQTT_TOPIC="idle", MQTT_KEEPALIVE="1s"))
    wait_until(lambda: broker.log_path.read_text(errors="replace").count("Received PINGREQ from bridge-0") >= 3, 10,
               "the bridge sends no PINGREQ")
    assert bridge.log.count("connected to") == 1
    device = devices(broker.port, ["idle/reply"])
    device.publish("idle", b"still here")
    assert device.wait_for(1) == [("idle/reply", b"still here")]


def test_a_persistent_session_keeps_messages_sent_while_the_bridge_was_away(broker, start_watcher, start_bridge,
                                                                           devices):
    watcher = start_watcher()
    env = bridge_env(broker, watcher, MQTT_TOPIC="queued", MQTT_CLEAN_SESSION="false", MQTT_CLIENT_ID="keeper")
    first = start_bridge(env)
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=20) == 0
    device = devices(broker.port, ["queued/reply"])
    for i in range(10):
        device.publish("queued", f"while away {i}".encode())
    second = start_bridge(env)
    assert "session present: true" in second.log
    replies = device.wait_for(10)
    assert sorted(payload for _, payload in replies) == [f"while away {i}".encode() for i in range(10)]


def test_user_name_and_password_reach_a_broker_that_requires_them(tmp_path, start_watcher, start_bridge, devices):
    passwords = tmp_path / "passwords"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(passwords), "fx", "s3cret"], check=True,
                   capture_output=True)
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    # Started as root, mosquitto would switch to its own user, which cannot read the test's files.
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
                      f"user {getpass.getuser()}\n")
    broker = Broker(port, tmp_path / "auth-mosquitto.log", config=config)
    broker.start()
    try:
        watcher = start_watcher()
        secret = tmp_path / "secret"
        secret.write_text("s3cret\n")
        env = bridge_env(broker, watcher, MQTT_TOPIC="auth", MQTT_USERNAME="fx")
        start_bridge({**env, "MQTT_PASSWORD_FILE": str(secret)})
        refused = start_bridge({**env, "MQTT_PASSWORD": "wrong"}, wait=False)
        assert refused.process.wait(timeout=20) == 1
        assert "refused the connection: return code" in refused.log
    finally:
        broker.stop()


def test_a_new_message_reusing_a_packet_id_after_a_clean_reconnect_is_not_taken_for_a_redelivery(
        start_watcher, start_bridge):
    packets = []

    def session(connection, number):
        if number == 1 and accept_and_subscribe(connection):
            connection.sendall(b"\x32\x0d\x00\x01t\x00\x011500:old")  # still being handled when we drop
            time.sleep(0.3)
        elif number == 2:
            read_packet(connection)
            connection.sendall(b"\x20\x02\x00\x00")  # no session: packet ids start again at 1
            deadline = time.monotonic() + 6
            connection.settimeout(0.2)
            while time.monotonic() < deadline:
                try:
                    packet = read_packet(connection)
                except socket.timeout:
                    continue
                if packet is None:
                    return
                header, body = packet
                packets.append(packet)
                if header == 0x82:
                    connection.sendall(b"\x90\x03" + body[:2] + b"\x01")
                    connection.sendall(b"\x32\x0c\x00\x01t\x00\x010:fresh")
                elif header & 0xF0 == 0x30:
                    connection.sendall(b"\x40\x02" + body[9:11])

    scripted = ScriptedBroker(session)
    try:
        watcher = start_watcher(env={"HANDLER_NAME": "sleep"})
        start_bridge({"MQTT_PORT": str(scripted.port), "FX_TARGET": f"127.0.0.1:{watcher.port}", "MQTT_TOPIC": "t"})
        wait_until(lambda: sum(1 for h, _ in packets if h & 0xF0 == 0x30) >= 2, 20, lambda: f"packets: {packets}")
        time.sleep(0.3)
    finally:
        scripted.close()
    replies = [body[11:] for header, body in packets if header & 0xF0 == 0x30]
    assert sorted(replies) == [b"fresh", b"old"]
    acks = [i for i, (header, body) in enumerate(packets) if header == 0x40]
    fresh = next(i for i, (header, body) in enumerate(packets) if header & 0xF0 == 0x30 and body.endswith(b"fresh"))
    # One PUBACK for packet 1 (the fresh message), after its reply; none for the forgotten one.
    assert [packets[i][1] for i in acks] == [b"\x00\x01"] and acks[0] > fresh


def test_a_broker_that_never_answers_connect_is_retried(start_bridge):
    def session(connection, number):
        read_packet(connection)
        time.sleep(11)  # past the 10 s CONNACK bound

    scripted = ScriptedBroker(session)
    try:
        bridge = start_bridge({"MQTT_PORT": str(scripted.port)}, wait=False)
        bridge.wait_for_log("no CONNACK within 10.0 s", timeout=30)
        wait_until(lambda: scripted.connections >= 2, 20, "the bridge did not retry")
        assert bridge.process.poll() is None
    finally:
        scripted.close()
