import HandlerKit
import NIOCore

/// Reads gRPC's length-prefixed messages (a flag byte, a 4-byte big-endian length, the
/// message) out of a stream's DATA frames, which may split or join them anywhere.
///
/// A message arriving in one frame is handed on without a copy; one spread over frames is
/// gathered once, into a buffer reserved at its full size as soon as its length is known.
struct GRPCMessageReader {
  /// Why the bytes are not a message this server accepts.
  enum Failure: Error, Equatable {
    /// The message is marked compressed; this server takes identity encoding only.
    case compressed
    /// The flag byte is neither 0 nor 1.
    case badFlag(UInt8)
    /// The length prefix is larger than ``GRPCMessageReader/maxMessageBytes``.
    case tooLarge(Int)
  }

  /// The largest message accepted, in bytes.
  let maxMessageBytes: Int
  private var buffered = ByteBuffer()

  init(maxMessageBytes: Int) {
    self.maxMessageBytes = maxMessageBytes
  }

  /// Whether bytes of an unfinished message are waiting for more.
  var hasPartialMessage: Bool { buffered.readableBytes > 0 }

  /// Adds the payload of one DATA frame.
  mutating func append(_ bytes: ByteBuffer) {
    if buffered.readableBytes == 0 {
      buffered = bytes
    } else {
      buffered.writeImmutableBuffer(bytes)
    }
  }

  /// The next whole message, or `nil` until more bytes arrive.
  mutating func next() throws(Failure) -> ByteBuffer? {
    guard let flag = buffered.getInteger(at: buffered.readerIndex, as: UInt8.self),
      let length = buffered.getInteger(at: buffered.readerIndex + 1, as: UInt32.self)
    else { return nil }
    switch flag {
    case 0: break
    case 1: throw .compressed
    default: throw .badFlag(flag)
    }
    let size = Int(length)
    guard size <= maxMessageBytes else { throw .tooLarge(size) }
    let missing = 5 + size - buffered.readableBytes
    guard missing <= 0 else {
      buffered.reserveCapacity(minimumWritableBytes: missing)
      return nil
    }
    buffered.moveReaderIndex(forwardBy: 5)
    let message = buffered.readSlice(length: size)
    if buffered.readableBytes == 0 { buffered = ByteBuffer() }
    return message
  }
}

/// gRPC's content type, as requests and replies carry it.
enum GRPCContentType {
  /// Whether `value` is `application/grpc`, alone or with a `+format` or `;parameters`.
  static func matches(_ value: String) -> Bool {
    value == "application/grpc" || value.hasPrefix("application/grpc+") || value.hasPrefix("application/grpc;")
  }
}

/// Writes gRPC's framing and the watcher's replies.
enum GRPCFrame {
  /// A framed message whose only field is field 1, length-delimited (`bytes` or `string`):
  /// `pb.Reply`, `pb.Messages` and `pb.Message` all look like this on the wire. An empty value
  /// is left out, as proto3 encoders do.
  static func field1Message(_ value: some Collection<UInt8>, allocator: ByteBufferAllocator) -> ByteBuffer {
    let count = value.count
    let messageLength = count == 0 ? 0 : 1 + varintSize(UInt64(count)) + count
    var buffer = allocator.buffer(capacity: 5 + messageLength)
    buffer.writeInteger(UInt8(0))
    buffer.writeInteger(UInt32(messageLength))
    if count > 0 {
      buffer.writeInteger(UInt8(0x0A))
      writeVarint(UInt64(count), to: &buffer)
      buffer.writeBytes(value)
    }
    return buffer
  }

  /// ``field1Message(_:allocator:)`` with a handler's output, copied once from where it is.
  static func field1Message(_ output: Output, allocator: ByteBufferAllocator) -> ByteBuffer {
    output.withUnsafeBytes { field1Message($0, allocator: allocator) }
  }

  /// A framed message made of already encoded protobuf bytes.
  static func message(_ encoded: some Collection<UInt8>, allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 5 + encoded.count)
    buffer.writeInteger(UInt8(0))
    buffer.writeInteger(UInt32(encoded.count))
    buffer.writeBytes(encoded)
    return buffer
  }

  static func varintSize(_ value: UInt64) -> Int {
    var value = value
    var size = 1
    while value >= 0x80 {
      value >>= 7
      size += 1
    }
    return size
  }

  static func writeVarint(_ value: UInt64, to buffer: inout ByteBuffer) {
    var value = value
    while value >= 0x80 {
      buffer.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
      value >>= 7
    }
    buffer.writeInteger(UInt8(value))
  }
}

/// A call's outcome as gRPC trailers carry it.
struct GRPCStatus: Error, Equatable {
  /// The status code's number (0 is OK).
  var code: Int
  /// The message, as it is before percent-encoding.
  var message: String

  static let ok = GRPCStatus(code: 0, message: "")

  private init(code: Int, message: String) {
    self.code = code
    self.message = message
  }

  /// The failure of the gRPC code of the same name as `code`, with `message`.
  init(_ code: HandlerError.Code, _ message: String) {
    self.init(code: code.grpcStatusCode, message: message)
  }

  /// The status a ``HandlerError`` stands for: same name, same message.
  init(_ error: HandlerError) {
    self.init(error.code, error.message)
  }

  /// `grpc-message` as the gRPC spec encodes it: printable ASCII except `%` as is, every other
  /// byte of the UTF-8 as `%XX`.
  var encodedMessage: String {
    let hex = Array("0123456789ABCDEF".unicodeScalars)
    var encoded = ""
    encoded.reserveCapacity(message.utf8.count)
    for byte in message.utf8 {
      if (0x20...0x7E).contains(byte) && byte != UInt8(ascii: "%") {
        encoded.unicodeScalars.append(Unicode.Scalar(byte))
      } else {
        encoded.unicodeScalars.append("%")
        encoded.unicodeScalars.append(hex[Int(byte >> 4)])
        encoded.unicodeScalars.append(hex[Int(byte & 0x0F)])
      }
    }
    return encoded
  }

  /// `text`, a `grpc-message` as received, percent-decoded; a `%` not followed by two hex digits
  /// is kept as it is, and bytes that are not UTF-8 become U+FFFD.
  static func decodedMessage(_ text: String) -> String {
    let bytes = Array(text.utf8)
    var decoded: [UInt8] = []
    decoded.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
      if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
        let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
      {
        decoded.append(high << 4 | low)
        index += 3
      } else {
        decoded.append(bytes[index])
        index += 1
      }
    }
    return String(decoding: decoded, as: UTF8.self)
  }

  private static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    default: nil
    }
  }
}

extension HandlerError.Code {
  /// The code of the gRPC status code numbered `grpcStatusCode` (`unknown` for a number gRPC
  /// does not define, and for 0, which is no failure).
  package init(grpcStatusCode: Int) {
    self = Self.allCases.first { $0.grpcStatusCode == grpcStatusCode } ?? .unknown
  }

  /// The number of the gRPC status code of the same name.
  package var grpcStatusCode: Int {
    switch self {
    case .cancelled: 1
    case .unknown: 2
    case .invalidArgument: 3
    case .deadlineExceeded: 4
    case .notFound: 5
    case .alreadyExists: 6
    case .permissionDenied: 7
    case .resourceExhausted: 8
    case .failedPrecondition: 9
    case .aborted: 10
    case .outOfRange: 11
    case .unimplemented: 12
    case .internalError: 13
    case .unavailable: 14
    case .dataLoss: 15
    case .unauthenticated: 16
    }
  }
}
