import NIOCore
import NIOHTTP2

/// The parts of HTTP/2's frame layer (RFC 9113 §4, §6) that ``HTTP2ServerConnection`` reads
/// and writes itself: frame types, flags, the 9-byte frame header and the errors that end a
/// connection.
enum HTTP2Wire {
  /// What every client sends first (RFC 9113 §3.4).
  static let clientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
  /// The length of a frame header.
  static let frameHeaderLength = 9
  /// The largest frame payload a peer may send before it hears otherwise (and this server never
  /// announces otherwise): `SETTINGS_MAX_FRAME_SIZE`'s initial value.
  static let defaultMaxFrameSize = 16_384
  /// The largest frame size a peer may announce.
  static let largestMaxFrameSize = (1 << 24) - 1
  /// The initial flow-control window of a stream, and always of a connection.
  static let defaultWindowSize = 65_535
  /// The largest flow-control window.
  static let largestWindowSize = Int(Int32.max)

  /// Frame types (RFC 9113 §6).
  enum FrameType {
    static let data: UInt8 = 0x0
    static let headers: UInt8 = 0x1
    static let priority: UInt8 = 0x2
    static let rstStream: UInt8 = 0x3
    static let settings: UInt8 = 0x4
    static let pushPromise: UInt8 = 0x5
    static let ping: UInt8 = 0x6
    static let goAway: UInt8 = 0x7
    static let windowUpdate: UInt8 = 0x8
    static let continuation: UInt8 = 0x9
  }

  /// Frame flags (RFC 9113 §6).
  enum Flags {
    static let endStream: UInt8 = 0x1
    static let ack: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4
    static let padded: UInt8 = 0x8
    static let priority: UInt8 = 0x20
  }

  /// Setting identifiers (RFC 9113 §6.5.2).
  enum Setting {
    static let headerTableSize: UInt16 = 0x1
    static let enablePush: UInt16 = 0x2
    static let maxConcurrentStreams: UInt16 = 0x3
    static let initialWindowSize: UInt16 = 0x4
    static let maxFrameSize: UInt16 = 0x5
    static let maxHeaderListSize: UInt16 = 0x6
  }

  /// A frame's header: what the payload after it is.
  struct FrameHeader: Equatable {
    var length: Int
    var type: UInt8
    var flags: UInt8
    var streamID: UInt32

    func has(_ flag: UInt8) -> Bool { flags & flag != 0 }
  }

  /// Something a peer sent that ends the connection: it is told with GOAWAY and `code`.
  struct ConnectionError: Error, Equatable {
    let code: HTTP2ErrorCode
    let reason: String

    init(_ code: HTTP2ErrorCode, _ reason: String) {
      self.code = code
      self.reason = reason
    }
  }
}

extension ByteBuffer {
  /// The frame header at the reader index, if nine bytes are readable; it is not read.
  func peekHTTP2FrameHeader() -> HTTP2Wire.FrameHeader? {
    guard
      let (lengthHigh, lengthLow, type, flags, streamID) = getMultipleIntegers(
        at: readerIndex, as: (UInt16, UInt8, UInt8, UInt8, UInt32).self)
    else { return nil }
    return HTTP2Wire.FrameHeader(
      length: Int(lengthHigh) << 8 | Int(lengthLow), type: type, flags: flags, streamID: streamID & 0x7FFF_FFFF)
  }

  /// Writes a frame header.
  mutating func writeHTTP2FrameHeader(length: Int, type: UInt8, flags: UInt8 = 0, streamID: UInt32) {
    writeMultipleIntegers(
      UInt16(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length), type, flags, streamID)
  }

  /// Writes the frame header of a frame whose payload is already written after `start`, where
  /// nine bytes were left for it.
  mutating func setHTTP2FrameHeader(at start: Int, type: UInt8, flags: UInt8, streamID: UInt32) {
    let length = writerIndex - start - HTTP2Wire.frameHeaderLength
    setMultipleIntegers(
      UInt16(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length), type, flags, streamID, at: start)
  }
}
