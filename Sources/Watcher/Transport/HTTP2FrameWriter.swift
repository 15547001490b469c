import NIOCore
import NIOHPACK
import NIOHTTP2

/// Encodes the HTTP/2 frames a server sends on one connection into buffers for its next write:
/// one buffer a loop tick, reused from tick to tick, except that a DATA payload of 4 KiB or more
/// is handed on as a buffer of its own rather than copied. Header blocks are HPACK-encoded
/// (NIOHPACK) and split into CONTINUATION frames when longer than the peer takes.
struct HTTP2FrameWriter {
  /// DATA payloads this large or larger are written as buffers of their own rather than copied.
  static let smallestUncopiedPayload = 4096

  /// The largest frame payload the peer takes (its `SETTINGS_MAX_FRAME_SIZE`).
  var maxFrameSize = HTTP2Wire.defaultMaxFrameSize
  private var encoder: HPACKEncoder
  private let allocator: ByteBufferAllocator
  /// What was encoded before the last uncopied payload (and that payload), in order.
  private var earlier: [ByteBuffer] = []
  /// What was encoded since.
  private var current: ByteBuffer

  init(allocator: ByteBufferAllocator) {
    self.allocator = allocator
    self.encoder = HPACKEncoder(allocator: allocator)
    self.current = allocator.buffer(capacity: 1024)
  }

  /// Whether nothing is encoded since the last ``write(to:flush:)``.
  var isEmpty: Bool { earlier.isEmpty && current.readableBytes == 0 }

  /// Hands the encoded buffers to `write` in order (`isLast` for the last), then calls `flush`;
  /// the writer's buffer is reused for the next frames once the socket has written it.
  mutating func write(to write: (ByteBuffer, _ isLast: Bool) -> Void, flush: () -> Void) {
    var left = earlier.count + (current.readableBytes > 0 ? 1 : 0)
    for buffer in earlier {
      left -= 1
      write(buffer, left == 0)
    }
    earlier.removeAll(keepingCapacity: true)
    if current.readableBytes > 0 { write(current, true) }
    flush()
    current.clear()  // no copy: the socket holds it no longer, unless the write had to wait
  }

  /// The peer's `SETTINGS_HEADER_TABLE_SIZE`: the encoder's table is kept within it (and within
  /// HPACK's default, which this server's table never exceeds).
  mutating func setHeaderTableSize(_ size: Int) {
    // Fails only while a block is being encoded, which is never between frames.
    try? encoder.setDynamicTableSize(min(size, HPACKEncoder.defaultDynamicTableSize))
  }

  mutating func settings(_ settings: [(identifier: UInt16, value: Int)]) {
    current.writeHTTP2FrameHeader(length: settings.count * 6, type: HTTP2Wire.FrameType.settings, streamID: 0)
    for setting in settings {
      current.writeMultipleIntegers(setting.identifier, UInt32(setting.value))
    }
  }

  mutating func settingsAck() {
    current.writeHTTP2FrameHeader(length: 0, type: HTTP2Wire.FrameType.settings, flags: HTTP2Wire.Flags.ack, streamID: 0)
  }

  mutating func ping(_ data: UInt64, ack: Bool) {
    current.writeHTTP2FrameHeader(
      length: 8, type: HTTP2Wire.FrameType.ping, flags: ack ? HTTP2Wire.Flags.ack : 0, streamID: 0)
    current.writeInteger(data)
  }

  mutating func headers(_ headers: HPACKHeaders, endStream: Bool, streamID: UInt32) {
    let start = current.writerIndex
    current.writeRepeatingByte(0, count: HTTP2Wire.frameHeaderLength)
    do {
      try encoder.encode(headers: headers, to: &current)
    } catch {
      // NIOHPACK's one-shot encoding fails only when an incremental one is under way: never here.
      preconditionFailure("HPACK encoding failed: \(error)")
    }
    let endStreamFlag = endStream ? HTTP2Wire.Flags.endStream : 0
    let length = current.writerIndex - start - HTTP2Wire.frameHeaderLength
    guard length > maxFrameSize else {
      current.setHTTP2FrameHeader(
        at: start, type: HTTP2Wire.FrameType.headers, flags: endStreamFlag | HTTP2Wire.Flags.endHeaders,
        streamID: streamID)
      return
    }
    // Too long for one frame: HEADERS and CONTINUATIONs.
    var block = current.getSlice(at: start + HTTP2Wire.frameHeaderLength, length: length)!
    current.moveWriterIndex(to: start)
    var type = HTTP2Wire.FrameType.headers
    var flags = endStreamFlag
    while block.readableBytes > 0 {
      var fragment = block.readSlice(length: min(block.readableBytes, maxFrameSize))!
      if block.readableBytes == 0 { flags |= HTTP2Wire.Flags.endHeaders }
      current.writeHTTP2FrameHeader(length: fragment.readableBytes, type: type, flags: flags, streamID: streamID)
      current.writeBuffer(&fragment)
      type = HTTP2Wire.FrameType.continuation
      flags = 0
    }
  }

  /// One DATA frame: `bytes` must fit the peer's frame size and windows.
  mutating func data(_ bytes: ByteBuffer, endStream: Bool, streamID: UInt32) {
    var bytes = bytes
    current.writeHTTP2FrameHeader(
      length: bytes.readableBytes, type: HTTP2Wire.FrameType.data, flags: endStream ? HTTP2Wire.Flags.endStream : 0,
      streamID: streamID)
    guard bytes.readableBytes >= Self.smallestUncopiedPayload else {
      current.writeBuffer(&bytes)
      return
    }
    earlier.append(current)
    earlier.append(bytes)
    current = allocator.buffer(capacity: 1024)
  }

  mutating func windowUpdate(_ increment: Int, streamID: UInt32) {
    current.writeHTTP2FrameHeader(length: 4, type: HTTP2Wire.FrameType.windowUpdate, streamID: streamID)
    current.writeInteger(UInt32(increment))
  }

  mutating func reset(_ code: HTTP2ErrorCode, streamID: UInt32) {
    current.writeHTTP2FrameHeader(length: 4, type: HTTP2Wire.FrameType.rstStream, streamID: streamID)
    current.writeInteger(UInt32(code.networkCode))
  }

  /// A GOAWAY, with up to 256 bytes of `reason` as its debug data.
  mutating func goAway(lastStreamID: UInt32, code: HTTP2ErrorCode, reason: String = "") {
    let debug = Array(reason.utf8.prefix(256))
    current.writeHTTP2FrameHeader(length: 8 + debug.count, type: HTTP2Wire.FrameType.goAway, streamID: 0)
    current.writeMultipleIntegers(lastStreamID, UInt32(code.networkCode))
    current.writeBytes(debug)
  }
}
