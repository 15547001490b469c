import Foundation
import FxWatcherProto
import HandlerKit
import NIOCore
import SwiftProtobuf
import Testing

@testable import Watcher

/// A large `pb.Request` input is decoded without a copy, sharing the received bytes; every
/// request decodes to exactly what swift-protobuf decodes, and what it refuses stays refused.
@Suite("Requests decoded with their input shared")
struct SharedInputTests {
  static func request(input count: Int) -> Pb_Request {
    var request = Pb_Request()
    request.input = Data((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
    request.info.functionName = "fn"
    request.info.timeout = "5s"
    request.info.trigger.topic = "t/1"
    return request
  }

  static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

  /// Whether `data`'s bytes lie inside `buffer`'s.
  static func shares(_ data: Data, _ buffer: ByteBuffer) -> Bool {
    let inner = data.withUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
    return buffer.withUnsafeReadableBytes { outer in
      let start = UInt(bitPattern: outer.baseAddress)
      return inner >= start && inner < start + UInt(outer.count)
    }
  }

  @Test(arguments: [SharedInput.minimumSharedBytes, 64 * 1024, 1 << 20])
  func aLargeInputIsSharedAndEqualsSwiftProtobufsDecoding(count: Int) throws {
    let expected = Self.request(input: count)
    let message = Self.buffer(try expected.serializedBytes())
    let decoded = try SharedInput.decodeRequest(message)
    #expect(decoded == expected)
    #expect(Self.shares(decoded.input, message))
  }

  @Test func aSmallInputIsCopied() throws {
    let expected = Self.request(input: 100)
    let message = Self.buffer(try expected.serializedBytes())
    let decoded = try SharedInput.decodeRequest(message)
    #expect(decoded == expected)
    #expect(!Self.shares(decoded.input, message))
  }

  @Test func theSharedInputOutlivesTheBufferAndIsNotChangedByItsWriters() throws {
    let expected = Self.request(input: 64 * 1024)
    var message: ByteBuffer? = Self.buffer(try expected.serializedBytes())
    let decoded = try SharedInput.decodeRequest(message!)
    // The buffer is written to (it copies its storage first: the input still refers to it)…
    message!.setBytes([UInt8](repeating: 0xEE, count: message!.readableBytes), at: message!.readerIndex)
    // …and let go of.
    message = nil
    #expect(decoded.input == expected.input)
  }

  @Test func fieldsInAnyOrderWithUnknownOnesDecodeAsSwiftProtobufDecodesThem() throws {
    let request = Self.request(input: 20_000)
    let info = try request.info.serializedBytes() as [UInt8]
    let input = [UInt8](request.input)
    // info (2) first, then an unknown varint field 9 and an unknown fixed64 field 10, then input (1).
    var bytes: [UInt8] = [0x12] + Self.varint(info.count) + info + [0x48, 0x96, 0x01]
    bytes += [0x51] + [UInt8](repeating: 1, count: 8)
    bytes += [0x0A] + Self.varint(input.count) + input
    let message = Self.buffer(bytes)
    let decoded = try SharedInput.decodeRequest(message)
    #expect(decoded == (try Pb_Request(serializedBytes: bytes)))
    #expect(decoded.input == request.input && decoded.info == request.info)
    #expect(Self.shares(decoded.input, message))
  }

  @Test func inputTwiceIsLeftToSwiftProtobufWhichKeepsTheLast() throws {
    let first = [UInt8](repeating: 1, count: 20_000), last = [UInt8](repeating: 2, count: 20_000)
    let bytes = [0x0A] + Self.varint(first.count) + first + [0x0A] + Self.varint(last.count) + last
    let decoded = try SharedInput.decodeRequest(Self.buffer(bytes))
    #expect(decoded.input == Data(last))
  }

  @Test(arguments: [
    // input declared longer than the message
    [0x0A] + varint(40_000) + [UInt8](repeating: 0, count: 20_000),
    // a truncated varint tag after a large input
    [0x0A] + varint(20_000) + [UInt8](repeating: 0, count: 20_000) + [0x80],
    // field number 0
    [0x02] + varint(20_000) + [UInt8](repeating: 0, count: 20_000),
    // an info field that is not a valid Info message
    [0x0A] + varint(20_000) + [UInt8](repeating: 0, count: 20_000) + [0x12, 0x02, 0xFF, 0xFF],
  ])
  func whatSwiftProtobufRefusesIsRefusedTheSameWay(bytes: [UInt8]) {
    let expected = #expect(throws: HandlerError.self) { try GRPCMethod.decode(Pb_Request.self, Self.buffer(bytes)) }
    let error = #expect(throws: HandlerError.self) { try SharedInput.decodeRequest(Self.buffer(bytes)) }
    #expect(error?.code == .invalidArgument)
    #expect(error?.message.contains("pb.Request") == true)
    #expect(error?.message == expected?.message)
  }

  static func varint(_ value: Int) -> [UInt8] {
    var value = UInt64(value)
    var bytes: [UInt8] = []
    repeat {
      bytes.append(UInt8(value & 0x7F) | (value > 0x7F ? 0x80 : 0))
      value >>= 7
    } while value > 0
    return bytes
  }
}
