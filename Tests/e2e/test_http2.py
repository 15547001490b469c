"""End-to-end: the watcher's HTTP/2 (its own, on the socket's bytes) as RFC 9113 has it, seen by
peers that are not gRPC clients: hyper-h2, which checks every frame the watcher sends against
the flow-control windows it gave, and a raw client writing frames as given (hyperframe, hpack),
which a gRPC client never would: padding, CONTINUATION, protocol errors."""

import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame,
                              PushPromiseFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CALL = [(":method", "POST"), (":scheme", "http"), (":path", "/pb.FxWatcher/Call"), (":authority", "localhost"),
        ("content-type", "application/grpc"), ("te", "trailers")]
PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = (
    0x1, 0x3, 0x6, 0x7, 0x9, 0xB)


def framed(message):
    return struct.pack(">BI", 0, len(message)) + message


def request(pb, data):
    return framed(pb.messages.Request(input=data).SerializeToString())


def reply_output(pb, body):
    (length,) = struct.unpack(">I", body[1:5])
    assert len(body) == 5 + length
    return pb.messages.Reply.FromString(body[5:]).Output


class RawConnection:
    """A client writing the frames it is given and reading the watcher's, frame by frame."""

    def __init__(self, port, settings=None, preface=True):
        """Connects; sends the preface and SETTINGS unless told not to."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()
        self.received = b""
        if preface:
            self.send(PREFACE, SettingsFrame(0, settings=settings or {}))

    def send(self, *frames):
        self.sock.sendall(b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames))

    def block(self, headers):
        return self.encoder.encode(headers)

    def _read(self, count):
        while len(self.received) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.received += chunk
        data, self.received = self.received[:count], self.received[count:]
        return data

    def next_frame(self):
        """The watcher's next frame, or None once it closed the connection."""
        try:
            header = self._read(9)
            if header is None:
                return None
            frame, length = Frame.parse_frame_header(memoryview(header))
            body = self._read(length)
        except ConnectionResetError:
            return None
        if body is None:
            return None
        frame.parse_body(memoryview(body))
        return frame

    def frames_of(self, stream_id):
        """The watcher's frames of `stream_id` until it ends or resets the stream: ('headers', dict),
        ('data', bytes), ('reset', code); SETTINGS, PING acks and WINDOW_UPDATEs are skipped."""
        frames = []
        while True:
            frame = self.next_frame()
            assert frame is not None, f"the connection closed; stream {stream_id} got {frames}"
            if frame.stream_id != stream_id:
                continue
            if isinstance(frame, HeadersFrame):
                frames.append(("headers", dict(self.decoder.decode(frame.data, raw=False))))
            elif isinstance(frame, DataFrame):
                frames.append(("data", frame.data))
            elif isinstance(frame, RstStreamFrame):
                frames.append(("reset", frame.error_code))
                return frames
            if "END_STREAM" in frame.flags:
                return frames

    def go_away(self):
        """The GOAWAY the watcher sends before closing, then checks it closes."""
        while True:
            frame = self.next_frame()
            assert frame is not None, "the watcher closed the connection without a GOAWAY"
            if isinstance(frame, GoAwayFrame):
                assert self.next_frame() is None, "the connection stayed open after the GOAWAY"
                return frame

    def close(self):
        self.sock.close()


def answered(frames, pb):
    """The reply of a call's frames, checking they are a successful call's."""
    assert [kind for kind, _ in frames] == ["headers", "data", "headers"], frames
    assert frames[0][1][":status"] == "200" and frames[2][1]["grpc-status"] == "0", frames
    return reply_output(pb, frames[1][1])


def test_padding_and_continuation_frames_make_the_request_they_carry(start_watcher, pb):
    watcher = start_watcher()
    connection = RawConnection(watcher.port)
    block = connection.block(CALL + [("x-request-id", "r" * 300)])
    thirds = len(block) // 3
    headers = HeadersFrame(1, data=block[:thirds], flags=["PADDED"])
    headers.pad_length = 7
    data = DataFrame(1, data=request(pb, b"padded and continued"), flags=["PADDED", "END_STREAM"])
    data.pad_length = 20
    connection.send(headers, ContinuationFrame(1, data=block[thirds:2 * thirds]),
                    ContinuationFrame(1, data=block[2 * thirds:], flags=["END_HEADERS"]), data)
    assert answered(connection.frames_of(1), pb) == "padded and continued"
    connection.close()


def test_a_call_sent_a_byte_at_a_time_is_answered(start_watcher, pb):
    # Every frame, the preface too, arrives in pieces: the watcher waits for the rest of each.
    watcher = start_watcher()
    connection = RawConnection(watcher.port, preface=False)
    data = PREFACE + SettingsFrame(0).serialize() + b"".join(f.serialize() for f in [
        HeadersFrame(1, data=connection.block(CALL), flags=["END_HEADERS"]),
        DataFrame(1, data=request(pb, b"bit by bit"), flags=["END_STREAM"])])
    for index in range(len(data)):
        connection.sock.sendall(data[index:index + 1])
        time.sleep(0.0005)
    assert answered(connection.frames_of(1), pb) == "bit by bit"
    connection.close()


def test_a_ping_is_answered_with_its_data(start_watcher):
    watcher = start_watcher()
    connection = RawConnection(watcher.port)
    connection.send(PingFrame(0, opaque_data=b"fxping!!"))
    while True:
        frame = connection.next_frame()
        if isinstance(frame, PingFrame):
            break
    assert "ACK" in frame.flags and frame.opaque_data == b"fxping!!"
    connection.close()


def h2_client(port, initial_window=None):
    """A hyper-h2 client connected to the watcher, its streams' windows `initial_window` if given."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    if initial_window is not None:
        connection.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window})
    connection.initiate_connection()
    sock.sendall(connection.data_to_send())
    return sock, connection


def h2_send_request(sock, connection, body):
    """Sends a call on stream 1 within the watcher's windows."""
    connection.send_headers(1, CALL)
    while body:
        size = min(len(body), connection.local_flow_control_window(1), connection.max_outbound_frame_size)
        if size == 0:
            sock.sendall(connection.data_to_send())
            connection.receive_data(sock.recv(65536))
            continue
        connection.send_data(1, body[:size], end_stream=size == len(body))
        body = body[size:]
    sock.sendall(connection.data_to_send())


def test_a_reply_larger_than_the_callers_windows_goes_as_they_open(start_watcher, pb):
    # hyper-h2 refuses (raises) any DATA beyond the windows it gave: 1,000 bytes a stream, and the
    # connection's initial 65,535, both given back as it reads.
    watcher = start_watcher()
    sock, connection = h2_client(watcher.port, initial_window=1000)
    data = bytes(range(97, 123)) * 8000  # 208,000 bytes
    h2_send_request(sock, connection, request(pb, data))
    body, frames, trailers = b"", 0, None
    while trailers is None:
        chunk = sock.recv(65536)
        assert chunk, "the watcher closed the connection"
        for event in connection.receive_data(chunk):
            if isinstance(event, h2.events.DataReceived):
                assert len(event.data) <= 1000
                body += event.data
                frames += 1
                connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                trailers = dict(event.headers)
            elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise AssertionError(f"{event}")
        sock.sendall(connection.data_to_send())
    assert trailers["grpc-status"] == "0"
    assert reply_output(pb, body) == data.decode()
    assert frames >= len(body) // 1000
    sock.close()


def test_a_window_opened_by_settings_lets_a_waiting_reply_go(start_watcher, pb):
    # Streams start with no window at all: the reply waits until SETTINGS opens every stream's.
    watcher = start_watcher()
    sock, connection = h2_client(watcher.port, initial_window=0)
    h2_send_request(sock, connection, request(pb, b"waited"))
    events = []
    while not any(isinstance(e, h2.events.ResponseReceived) for e in events):
        events += connection.receive_data(sock.recv(65536))
    assert not any(isinstance(e, h2.events.DataReceived) for e in events)
    connection.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
    sock.sendall(connection.data_to_send())
    while not any(isinstance(e, h2.events.StreamEnded) for e in events):
        events += connection.receive_data(sock.recv(65536))
        sock.sendall(connection.data_to_send())
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert reply_output(pb, body) == "waited"
    sock.close()


def test_replies_use_no_header_table_a_caller_does_not_allow(start_watcher, pb):
    # hpack's decoder fails on a reference past the table the caller allowed (none here) and on a
    # block that does not first say the table shrank.
    watcher = start_watcher()
    sock, connection = h2_client(watcher.port)
    connection.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    sock.sendall(connection.data_to_send())
    for stream_id in (1, 3, 5):
        connection.send_headers(stream_id, CALL)
        connection.send_data(stream_id, request(pb, b"no table"), end_stream=True)
        sock.sendall(connection.data_to_send())
        ended, body = False, b""
        while not ended:
            for event in connection.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                    body += event.data
                ended |= isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id
            sock.sendall(connection.data_to_send())
        assert reply_output(pb, body) == "no table"
    sock.close()


def connection_errors():
    """Each a connection error (RFC 9113 §5.4.1) as the frames that make it, and its code."""
    call = hpack.Encoder().encode(CALL)  # the first block of its connection
    large = hpack.Encoder().encode(CALL + [("x-large", "v" * 20_000)])
    return {
        "a WINDOW_UPDATE of 0 on the connection": ([WindowUpdateFrame(0, window_increment=0)], PROTOCOL_ERROR),
        "DATA on a stream never opened": ([DataFrame(1, data=b"x")], PROTOCOL_ERROR),
        "a frame over 16,384 bytes": ([HeadersFrame(1, data=call + b"\x00" * 16_400, flags=["END_HEADERS"])],
                                      FRAME_SIZE_ERROR),
        "a stream opened with an even id": ([HeadersFrame(2, data=call, flags=["END_HEADERS"])], PROTOCOL_ERROR),
        "CONTINUATION without HEADERS": ([ContinuationFrame(1, data=call, flags=["END_HEADERS"])], PROTOCOL_ERROR),
        "a PING inside a header block": ([HeadersFrame(1, data=call), PingFrame(0, opaque_data=b"12345678")],
                                         PROTOCOL_ERROR),
        "a PING of 7 bytes": ([b"\x00\x00\x07\x06\x00\x00\x00\x00\x00" + b"1234567"], FRAME_SIZE_ERROR),
        "SETTINGS_INITIAL_WINDOW_SIZE of 2^31": ([SettingsFrame(0, settings={0x4: 2**31})], FLOW_CONTROL_ERROR),
        "SETTINGS_ENABLE_PUSH of 2": ([SettingsFrame(0, settings={0x2: 2})], PROTOCOL_ERROR),
        "SETTINGS_MAX_FRAME_SIZE of 100": ([SettingsFrame(0, settings={0x5: 100})], PROTOCOL_ERROR),
        "a PUSH_PROMISE": ([PushPromiseFrame(1, promised_stream_id=2, data=call, flags=["END_HEADERS"])],
                           PROTOCOL_ERROR),
        "a header block HPACK cannot decode": ([HeadersFrame(1, data=b"\xff\xff\xff\x0f", flags=["END_HEADERS"])],
                                               COMPRESSION_ERROR),
        "RST_STREAM on a stream never opened": ([RstStreamFrame(7, error_code=0)], PROTOCOL_ERROR),
        "the connection's window over 2^31 - 1": ([WindowUpdateFrame(0, window_increment=2**31 - 1)],
                                                   FLOW_CONTROL_ERROR),
        # A CONTINUATION flood: a header block that never ends is not kept past 256 KiB.
        "a header block over 256 KiB": ([HeadersFrame(1, data=b"\x00" * 16_000)]
                                        + [ContinuationFrame(1, data=b"\x00" * 16_000)] * 17, ENHANCE_YOUR_CALM),
        # Its block half decoded, HPACK's table cannot be trusted: the connection ends.
        "a header list over 16 KiB": ([HeadersFrame(1, data=large[:10_000]),
                                       ContinuationFrame(1, data=large[10_000:], flags=["END_HEADERS"])],
                                      COMPRESSION_ERROR),
    }


@pytest.mark.parametrize("rule", list(connection_errors()))
def test_a_connection_error_is_answered_with_goaway_and_its_code_then_the_connection_closes(
        start_watcher, pb, rule):
    watcher = start_watcher()
    connection = RawConnection(watcher.port)
    frames, code = connection_errors()[rule]
    connection.send(*frames)
    assert connection.go_away().error_code == code, rule
    connection.close()
    # The watcher goes on serving other connections.
    other = RawConnection(watcher.port)
    other.send(HeadersFrame(1, data=other.block(CALL), flags=["END_HEADERS"]),
               DataFrame(1, data=request(pb, b"still here"), flags=["END_STREAM"]))
    assert answered(other.frames_of(1), pb) == "still here"
    other.close()


def test_a_connection_that_does_not_speak_http2_is_closed(start_watcher):
    watcher = start_watcher()
    with socket.create_connection(("127.0.0.1", watcher.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert b"HTTP/1.1" not in received


def test_a_stream_error_resets_that_stream_and_the_connection_goes_on(start_watcher, pb):
    watcher = start_watcher()
    connection = RawConnection(watcher.port)
    # A WINDOW_UPDATE of 0 on an open stream; HEADERS without END_STREAM after the request's.
    connection.send(HeadersFrame(1, data=connection.block(CALL), flags=["END_HEADERS"]),
                    WindowUpdateFrame(1, window_increment=0))
    assert connection.frames_of(1) == [("reset", PROTOCOL_ERROR)]
    connection.send(HeadersFrame(3, data=connection.block(CALL), flags=["END_HEADERS"]),
                    DataFrame(3, data=request(pb, b"x")),
                    HeadersFrame(3, data=connection.block([("x-trailer", "1")]), flags=["END_HEADERS"]))
    assert connection.frames_of(3)[-1] == ("reset", PROTOCOL_ERROR)
    connection.send(HeadersFrame(5, data=connection.block(CALL), flags=["END_HEADERS"]),
                    DataFrame(5, data=request(pb, b"after"), flags=["END_STREAM"]))
    assert answered(connection.frames_of(5), pb) == "after"
    connection.close()


def test_streams_over_the_announced_limit_are_refused_and_those_within_it_go_on(start_watcher, pb):
    watcher = start_watcher()
    connection = RawConnection(watcher.port)
    settings = connection.next_frame()
    assert isinstance(settings, SettingsFrame) and "ACK" not in settings.flags
    limit = settings.settings[SettingsFrame.MAX_CONCURRENT_STREAMS]
    # `limit` calls opened and left waiting for their messages, then one more.
    opened = [HeadersFrame(2 * i + 1, data=connection.block(CALL), flags=["END_HEADERS"]) for i in range(limit + 1)]
    connection.send(*opened)
    refused = 2 * limit + 1
    assert connection.frames_of(refused) == [("reset", REFUSED_STREAM)]
    connection.send(DataFrame(1, data=request(pb, b"first"), flags=["END_STREAM"]))
    assert answered(connection.frames_of(1), pb) == "first"
    connection.close()


def test_a_connection_resetting_streams_faster_than_200_in_30_seconds_is_closed(start_watcher):
    watcher = start_watcher()
    connection = RawConnection(watcher.port)
    frames = []
    for i in range(201):
        frames += [HeadersFrame(2 * i + 1, data=connection.block(CALL), flags=["END_HEADERS"]),
                   RstStreamFrame(2 * i + 1, error_code=0x8)]
    connection.send(*frames)
    assert connection.go_away().error_code == ENHANCE_YOUR_CALM
    connection.close()


def test_a_connection_that_sends_pings_without_reading_the_answers_is_closed(start_watcher):
    # The answers pile up once the socket takes no more; past 10,000 the watcher gives up on the
    # connection (ENHANCE_YOUR_CALM) instead of keeping them without bound.
    watcher = start_watcher()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", watcher.port))
    sock.sendall(PREFACE + SettingsFrame(0).serialize())
    pings = PingFrame(0, opaque_data=b"12345678").serialize() * 4096
    closed = False
    for _ in range(256):  # at most 1,048,576 PINGs (18 MB)
        try:
            sock.sendall(pings)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    assert closed, "the watcher kept answering PINGs nobody read"
    sock.close()
