import NIOCore
import Testing

@testable import MQTT

/// Byte vectors written from the MQTT 3.1.1 standard (sections 2 and 3), one or more per
/// packet type: each is encoded to exactly these bytes and parsed back to the same packet.
@Suite("MQTT packet codec")
struct PacketCodecTests {
  static func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

  static let vectors: [(name: String, packet: MQTTPacket, bytes: [UInt8])] = [
    (
      "CONNECT, clean session, keepalive 60",
      .connect(.init(clientID: "ab", cleanSession: true, keepAliveSeconds: 60)),
      [0x10, 14, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, 2, 0x61, 0x62]
    ),
    (
      "CONNECT with will, user name and password",
      .connect(
        .init(
          clientID: "c", cleanSession: false, keepAliveSeconds: 0x0102,
          will: .init(topic: "w", payload: [0xFF], qos: .atLeastOnce, retain: true), username: "u",
          password: [0x00, 0x70])),
      [
        0x10, 26, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 0b1110_1100, 0x01, 0x02, 0, 1, 0x63, 0, 1, 0x77, 0, 1, 0xFF, 0, 1,
        0x75, 0, 2, 0x00, 0x70,
      ]
    ),
    ("CONNACK accepted", .connAck(.init(sessionPresent: false, returnCode: .accepted)), [0x20, 2, 0, 0]),
    ("CONNACK session present", .connAck(.init(sessionPresent: true, returnCode: .accepted)), [0x20, 2, 1, 0]),
    ("CONNACK not authorized", .connAck(.init(sessionPresent: false, returnCode: .notAuthorized)), [0x20, 2, 0, 5]),
    (
      "PUBLISH QoS 0", .publish(.init(topic: "a/b", payload: buffer("hi"))),
      [0x30, 7, 0, 3, 0x61, 0x2F, 0x62, 0x68, 0x69]
    ),
    (
      "PUBLISH QoS 1, DUP, retain",
      .publish(.init(topic: "t", payload: buffer("x"), qos: .atLeastOnce, retain: true, duplicate: true, packetID: 10)),
      [0x3B, 6, 0, 1, 0x74, 0, 10, 0x78]
    ),
    (
      "PUBLISH QoS 2, empty payload", .publish(.init(topic: "t", payload: ByteBuffer(), qos: .exactlyOnce, packetID: 0x1234)),
      [0x34, 5, 0, 1, 0x74, 0x12, 0x34]
    ),
    ("PUBACK", .pubAck(packetID: 0xABCD), [0x40, 2, 0xAB, 0xCD]),
    ("PUBREC", .pubRec(packetID: 1), [0x50, 2, 0, 1]),
    ("PUBREL", .pubRel(packetID: 2), [0x62, 2, 0, 2]),
    ("PUBCOMP", .pubComp(packetID: 3), [0x70, 2, 0, 3]),
    (
      "SUBSCRIBE two filters",
      .subscribe(
        .init(
          packetID: 10,
          subscriptions: [.init(topicFilter: "a/b", qos: .atLeastOnce), .init(topicFilter: "c/#", qos: .exactlyOnce)])),
      [0x82, 14, 0, 10, 0, 3, 0x61, 0x2F, 0x62, 1, 0, 3, 0x63, 0x2F, 0x23, 2]
    ),
    (
      "SUBACK with a failure", .subAck(.init(packetID: 10, grantedQoS: [.atMostOnce, .atLeastOnce, nil])),
      [0x90, 5, 0, 10, 0, 1, 0x80]
    ),
    ("UNSUBSCRIBE", .unsubscribe(.init(packetID: 7, topicFilters: ["a/+"])), [0xA2, 7, 0, 7, 0, 3, 0x61, 0x2F, 0x2B]),
    ("UNSUBACK", .unsubAck(packetID: 7), [0xB0, 2, 0, 7]),
    ("PINGREQ", .pingReq, [0xC0, 0]),
    ("PINGRESP", .pingResp, [0xD0, 0]),
    ("DISCONNECT", .disconnect, [0xE0, 0]),
  ]

  @Test(arguments: vectors.indices)
  func encodesAndParsesTheVector(index: Int) throws {
    let (name, packet, bytes) = Self.vectors[index]
    #expect(Array(try packet.encoded().readableBytesView) == bytes, "\(name)")
    var buffer = ByteBuffer(bytes: bytes)
    var parser = MQTTPacketParser()
    #expect(try parser.next(from: &buffer) == .packet(packet), "\(name)")
    #expect(buffer.readableBytes == 0)
  }

  @Test func everyPacketTypeHasAVector() {
    #expect(Set(Self.vectors.map(\.packet.typeNumber)) == Set(1...14))
  }

  @Test(arguments: [(0, [0x00] as [UInt8]), (127, [0x7F]), (128, [0x80, 0x01]), (16_383, [0xFF, 0x7F]),
    (16_384, [0x80, 0x80, 0x01]), (2_097_151, [0xFF, 0xFF, 0x7F]), (2_097_152, [0x80, 0x80, 0x80, 0x01]),
    (268_435_455, [0xFF, 0xFF, 0xFF, 0x7F])])
  func remainingLengthUsesTheStandardsTable(length: Int, bytes: [UInt8]) {
    var buffer = ByteBuffer()
    MQTTPacket.writeRemainingLength(length, into: &buffer)
    #expect(Array(buffer.readableBytesView) == bytes)
  }

  @Test func aLargePublishRoundTripsWithAMultiByteLength() throws {
    let payload = ByteBuffer(bytes: (0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
    let packet = MQTTPacket.publish(.init(topic: "big", payload: payload, qos: .atLeastOnce, packetID: 9))
    var buffer = try packet.encoded()
    #expect(Array(buffer.readableBytesView.prefix(4)) == [0x32, 0xC7, 0x9A, 0x0C])  // 200,007 bytes
    var parser = MQTTPacketParser()
    #expect(try parser.next(from: &buffer) == .packet(packet))
  }

  @Test func packetsArrivingByteByByteParseTheSame() throws {
    var stream = ByteBuffer()
    for vector in Self.vectors { stream.writeBytes(vector.bytes) }
    var parser = MQTTPacketParser()
    var pending = ByteBuffer()
    var parsed: [MQTTPacket] = []
    for byte in stream.readableBytesView {
      pending.writeInteger(byte)
      while let inbound = try parser.next(from: &pending) {
        guard case .packet(let packet) = inbound else { Issue.record("unexpected \(inbound)"); return }
        parsed.append(packet)
      }
    }
    #expect(parsed == Self.vectors.map(\.packet))
  }

  @Test func anOversizedPublishIsReportedAndItsPayloadSkipped() throws {
    let big = MQTTPacket.publish(
      .init(topic: "t/big", payload: ByteBuffer(repeating: 0x41, count: 5000), qos: .atLeastOnce, packetID: 5))
    var stream = try big.encoded()
    stream.writeBytes([0xD0, 0])  // PINGRESP behind it
    var parser = MQTTPacketParser(maximumPacketSize: 1000)
    var results: [MQTTInbound] = []
    var pending = ByteBuffer()
    while stream.readableBytes > 0 {
      var chunk = stream.readSlice(length: min(333, stream.readableBytes))!
      pending.writeBuffer(&chunk)
      while let inbound = try parser.next(from: &pending) { results.append(inbound) }
      #expect(pending.readableBytes < 400, "skipped bytes are not held")
    }
    #expect(
      results == [
        .oversizedPublish(.init(topic: "t/big", qos: .atLeastOnce, packetID: 5, byteCount: 5009)), .packet(.pingResp),
      ])
  }

  @Test func anOversizedPacketOfAnotherTypeIsAnError() {
    var buffer = ByteBuffer(bytes: [0x90, 0x80, 0x08, 0, 1])  // SUBACK of 1,024 bytes
    var parser = MQTTPacketParser(maximumPacketSize: 100)
    #expect(throws: MQTTProtocolError("a SUBACK of 1024 bytes is over the 100-byte packet limit")) {
      try parser.next(from: &buffer)
    }
  }

  static let malformed: [(bytes: [UInt8], reason: String)] = [
    ([0x00, 0], "type 0 is reserved"),
    ([0xF0, 0], "type 15 is reserved"),
    ([0x31, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], "remaining length runs over 4 bytes"),
    ([0x36, 5, 0, 1, 0x74, 0, 1], "QoS 3 does not exist"),
    ([0x38, 3, 0, 1, 0x74], "a QoS 0 message cannot be a duplicate"),
    ([0x40, 3, 0, 1, 0], "left over"),
    ([0x40, 1, 0], "runs past the end"),
    ([0x41, 2, 0, 1], "flags must be 0000"),
    ([0x60, 2, 0, 1], "flags must be 0010"),
    ([0x80, 6, 0, 1, 0, 1, 0x61, 0], "flags must be 0010"),
    ([0x40, 2, 0, 0], "packet identifier 0"),
    ([0x32, 5, 0, 1, 0x74, 0, 0], "packet identifier 0"),
    ([0x30, 3, 0, 1, 0x23], "has a wildcard"),
    ([0x30, 2, 0, 0], "is empty or has a wildcard"),
    ([0x30, 3, 0, 1, 0xFF], "not valid UTF-8"),
    ([0x30, 3, 0, 1, 0x00], "contains U+0000"),
    ([0x30, 5, 0, 9, 0x74, 0x74, 0x74], "runs past the end"),
    ([0x20, 2, 0x02, 0], "reserved acknowledge flags"),
    ([0x20, 3, 0, 0, 0], "left over"),
    ([0x90, 2, 0, 1], "no return codes"),
    ([0x90, 3, 0, 1, 3], "return code 3"),
    ([0x82, 6, 0, 1, 0, 1, 0x61, 4], "requested QoS byte 4"),
    ([0x82, 7, 0, 1, 0, 2, 0x61, 0x23, 0], "not a valid topic filter"),
    ([0xA2, 2, 0, 1], "runs past the end"),  // UNSUBSCRIBE without a filter
    ([0xC0, 1, 0], "left over"),
    ([0x10, 12, 0, 4, 0x4D, 0x51, 0x54, 0x54, 3, 0x02, 0, 60, 0, 0], "level 3"),
    ([0x10, 12, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 0x03, 0, 60, 0, 0], "reserved flag"),
    ([0x10, 12, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 0x42, 0, 60, 0, 0], "password without a user name"),
    ([0x10, 12, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 0x18, 0, 60, 0, 0], "will QoS 3"),
    ([0x10, 12, 0, 4, 0x4D, 0x51, 0x54, 0x54, 4, 0x20, 0, 60, 0, 0], "without a will"),
  ]

  @Test(arguments: malformed.indices)
  func malformedBytesAreRefusedWithTheReason(index: Int) {
    let (bytes, reason) = Self.malformed[index]
    var buffer = ByteBuffer(bytes: bytes)
    var parser = MQTTPacketParser()
    do {
      let result = try parser.next(from: &buffer)
      Issue.record("\(bytes) parsed as \(String(describing: result)), expected an error about \(reason)")
    } catch {
      #expect(error.message.contains(reason), "\(bytes): \(error.message)")
    }
  }

  @Test func encodingRefusesWhatCannotBeWritten() {
    #expect(throws: MQTTProtocolError.self) {
      try MQTTPacket.publish(.init(topic: "t", payload: ByteBuffer(), qos: .atLeastOnce)).encoded()
    }
    #expect(throws: MQTTProtocolError.self) { try MQTTPacket.subscribe(.init(packetID: 1, subscriptions: [])).encoded() }
    #expect(throws: MQTTProtocolError.self) {
      try MQTTPacket.connect(.init(clientID: "c", password: [1])).encoded()
    }
    #expect(throws: MQTTProtocolError.self) {
      try MQTTPacket.publish(.init(topic: String(repeating: "t", count: 70_000), payload: ByteBuffer())).encoded()
    }
  }
}
