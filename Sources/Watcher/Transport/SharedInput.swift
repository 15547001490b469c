import FxWatcherMessages
import HandlerKit
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Decodes a `pb.Request` whose `input` (field 1) is large without copying the input: the
/// request's `Data` shares the received message's bytes, which it keeps alive.
///
/// swift-protobuf copies every `bytes` field it decodes; a 64 KiB call copied its input once
/// more here than anywhere else on its way. The top-level fields are walked first (tags,
/// varints, lengths, nothing decoded); the fields other than `input` are decoded by
/// swift-protobuf as usual, from their own bytes. Anything unusual (the input under
/// ``minimumSharedBytes``, `input` twice, a group, a field running past the end) leaves the
/// whole message to swift-protobuf, so what is accepted, refused and how is unchanged.
enum SharedInput {
  /// Inputs shorter than this are copied: a copy is cheaper than sharing, and a small input
  /// does not keep a large receive buffer alive.
  static let minimumSharedBytes = 16 * 1024

  /// The handler's request for the `pb.Request` in `message`.
  ///
  /// The methods call this on a line of its own, before they await the invoker: written as an
  /// argument of the awaited call, it crashed Swift 6.3.1's release build (LLVM's coroutine
  /// splitting, signal 11); not inlined, for the same reason.
  @inline(never)
  static func request(_ message: ByteBuffer) throws -> Request {
    Request(try decodeRequest(message))
  }

  /// The `pb.Request` in `message`.
  static func decodeRequest(_ message: ByteBuffer) throws -> Pb_Request {
    guard message.readableBytes >= minimumSharedBytes, let fields = TopLevelFields(message),
      let input = fields.input, input.readableBytes >= minimumSharedBytes
    else { return try GRPCMethod.decode(Pb_Request.self, message) }
    var request = try GRPCMethod.decode(Pb_Request.self, fields.others)
    request.input = Data(sharing: input)
    return request
  }

  /// A message's top-level fields, split into field 1 (length-delimited, once) and the others.
  struct TopLevelFields {
    /// Field 1's bytes, if it is there.
    var input: ByteBuffer?
    /// The other fields' bytes, tags included, in their order.
    var others: ByteBuffer

    /// Splits `message`; `nil` when a field is not well formed, field 1 is there twice or not
    /// length-delimited, or a field is a group.
    init?(_ message: ByteBuffer) {
      var reader = message
      var others = ByteBuffer()
      var input: ByteBuffer?
      while reader.readableBytes > 0 {
        let fieldStart = reader.readerIndex
        guard let tag = Self.readVarint(&reader), tag >> 3 != 0 else { return nil }
        let length: UInt64
        switch tag & 7 {
        case 0:  // varint
          guard Self.readVarint(&reader) != nil else { return nil }
          length = 0
        case 1: length = 8
        case 2:
          guard let declared = Self.readVarint(&reader) else { return nil }
          length = declared
        case 5: length = 4
        default: return nil  // groups (3, 4) and unknown wire types: swift-protobuf decides
        }
        guard length <= UInt64(reader.readableBytes), let value = reader.readSlice(length: Int(length)) else {
          return nil
        }
        if tag == (1 << 3 | 2) {
          guard input == nil else { return nil }
          input = value
        } else {
          var field = message
          field.moveReaderIndex(to: fieldStart)
          field.moveWriterIndex(to: reader.readerIndex)
          others.writeImmutableBuffer(field)
        }
      }
      self.input = input
      self.others = others
    }

    /// A base-128 varint of at most 10 bytes, or `nil`.
    private static func readVarint(_ buffer: inout ByteBuffer) -> UInt64? {
      var value: UInt64 = 0
      for shift in stride(from: UInt64(0), to: 70, by: 7) {
        guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
        value |= UInt64(byte & 0x7F) << shift
        if byte & 0x80 == 0 { return value }
      }
      return nil
    }
  }
}

extension Data {
  /// Data over `buffer`'s readable bytes, not copied: it keeps the buffer's storage alive until
  /// it is freed. The storage is never written while shared (a `ByteBuffer` writes only storage
  /// it alone refers to).
  init(sharing buffer: ByteBuffer) {
    self = buffer.withUnsafeReadableBytesWithStorageManagement { bytes, storage in
      guard let base = bytes.baseAddress, bytes.count > 0 else { return Data() }
      _ = storage.retain()
      return Data(
        bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: bytes.count,
        deallocator: .custom { _, _ in storage.release() })
    }
  }
}
