import NIOCore

/// What ``MQTTPacketParser`` reads from the wire: a packet, or the head of a PUBLISH too large
/// to hold, whose payload was skipped so the connection can go on.
public enum MQTTInbound: Sendable, Hashable {
  /// A whole packet.
  case packet(MQTTPacket)
  /// A PUBLISH over the parser's size limit: its topic and packet id, but not its payload.
  case oversizedPublish(OversizedPublish)

  /// The head of a PUBLISH whose payload was skipped.
  public struct OversizedPublish: Sendable, Hashable {
    /// The topic name.
    public var topic: String
    /// Its QoS: a QoS 1 message must still be acknowledged.
    public var qos: MQTTQoS
    /// Its packet identifier when `qos` is above 0.
    public var packetID: UInt16?
    /// The packet's size after the fixed header, in bytes.
    public var byteCount: Int
  }
}

/// Reads MQTT 3.1.1 packets from a byte stream, checking every rule the standard makes about
/// their form (fixed-header flags, lengths, UTF-8 strings without U+0000, wildcard-free topic
/// names, non-zero packet ids, QoS values, trailing bytes).
///
/// A PUBLISH longer than ``maximumPacketSize`` is not buffered: the parser reads its topic and
/// packet id, skips the payload as it arrives and yields ``MQTTInbound/oversizedPublish(_:)``.
/// Any other oversized packet, and every malformed one, throws ``MQTTProtocolError``.
public struct MQTTPacketParser: Sendable {
  /// The largest packet body (after the fixed header) held in memory.
  public let maximumPacketSize: Int
  private var bytesToSkip = 0

  /// Creates a parser that holds packets of up to `maximumPacketSize` bytes.
  public init(maximumPacketSize: Int = MQTTPacket.maximumRemainingLength) {
    self.maximumPacketSize = maximumPacketSize
  }

  /// Reads the next packet from the front of `buffer`, or returns `nil` when more bytes are
  /// needed (consuming only what is done with: skipped payload bytes).
  public mutating func next(from buffer: inout ByteBuffer) throws(MQTTProtocolError) -> MQTTInbound? {
    skipPending(in: &buffer)
    guard bytesToSkip == 0, let first: UInt8 = buffer.getInteger(at: buffer.readerIndex) else { return nil }
    let type = first >> 4
    let flags = first & 0x0F
    try Self.checkFixedHeader(type: type, flags: flags)

    var length = 0
    var headerLength = 1
    while true {
      guard headerLength <= 4 else {
        throw MQTTProtocolError("malformed \(MQTTPacket.typeName(type)): its remaining length runs over 4 bytes")
      }
      guard let byte: UInt8 = buffer.getInteger(at: buffer.readerIndex + headerLength) else { return nil }
      length |= Int(byte & 0x7F) << (7 * (headerLength - 1))
      headerLength += 1
      if byte & 0x80 == 0 { break }
    }

    if length <= maximumPacketSize {
      guard buffer.readableBytes >= headerLength + length else { return nil }
      buffer.moveReaderIndex(forwardBy: headerLength)
      var body = buffer.readSlice(length: length)!
      return .packet(try Self.decodeBody(type: type, flags: flags, body: &body))
    }
    guard type == 3 else {
      throw MQTTProtocolError(
        "a \(MQTTPacket.typeName(type)) of \(length) bytes is over the \(maximumPacketSize)-byte packet limit")
    }
    let qos = try Self.publishQoS(flags: flags)
    guard let topicLength: UInt16 = buffer.getInteger(at: buffer.readerIndex + headerLength) else { return nil }
    let headLength = 2 + Int(topicLength) + (qos == .atMostOnce ? 0 : 2)
    guard headLength <= length else {
      throw MQTTProtocolError("malformed PUBLISH: its topic runs past the end of the packet")
    }
    guard buffer.readableBytes >= headerLength + headLength else { return nil }
    buffer.moveReaderIndex(forwardBy: headerLength)
    var head = buffer.readSlice(length: headLength)!
    let topic = try Self.readTopicName(from: &head)
    let packetID = qos == .atMostOnce ? nil : try Self.readPacketID(from: &head, in: "PUBLISH")
    bytesToSkip = length - headLength
    skipPending(in: &buffer)
    return .oversizedPublish(.init(topic: topic, qos: qos, packetID: packetID, byteCount: length))
  }

  private mutating func skipPending(in buffer: inout ByteBuffer) {
    let count = min(bytesToSkip, buffer.readableBytes)
    buffer.moveReaderIndex(forwardBy: count)
    bytesToSkip -= count
  }

  private static func checkFixedHeader(type: UInt8, flags: UInt8) throws(MQTTProtocolError) {
    switch type {
    case 0, 15:
      throw MQTTProtocolError("malformed packet: type \(type) is reserved")
    case 3:
      _ = try publishQoS(flags: flags)
    case 6, 8, 10:
      guard flags == 0x02 else {
        throw MQTTProtocolError("malformed \(MQTTPacket.typeName(type)): fixed-header flags must be 0010, not \(binary(flags))")
      }
    default:
      guard flags == 0 else {
        throw MQTTProtocolError("malformed \(MQTTPacket.typeName(type)): fixed-header flags must be 0000, not \(binary(flags))")
      }
    }
  }

  private static func publishQoS(flags: UInt8) throws(MQTTProtocolError) -> MQTTQoS {
    guard let qos = MQTTQoS(rawValue: (flags >> 1) & 0x03) else {
      throw MQTTProtocolError("malformed PUBLISH: QoS 3 does not exist")
    }
    if qos == .atMostOnce && flags & 0x08 != 0 {
      throw MQTTProtocolError("malformed PUBLISH: a QoS 0 message cannot be a duplicate")
    }
    return qos
  }

  private static func binary(_ flags: UInt8) -> String {
    String(String(flags | 0x10, radix: 2).dropFirst())
  }

  private static func decodeBody(type: UInt8, flags: UInt8, body: inout ByteBuffer) throws(MQTTProtocolError)
    -> MQTTPacket
  {
    let name = MQTTPacket.typeName(type)
    let packet: MQTTPacket
    switch type {
    case 1:
      packet = .connect(try decodeConnect(&body))
    case 2:
      guard let ackFlags: UInt8 = body.readInteger(), let code: UInt8 = body.readInteger() else {
        throw truncated(name)
      }
      guard ackFlags & 0xFE == 0 else {
        throw MQTTProtocolError("malformed CONNACK: reserved acknowledge flags are set (\(ackFlags))")
      }
      packet = .connAck(.init(sessionPresent: ackFlags == 1, returnCode: MQTTConnectReturnCode(byte: code)))
    case 3:
      let qos = try publishQoS(flags: flags)
      let topic = try readTopicName(from: &body)
      let packetID = qos == .atMostOnce ? nil : try readPacketID(from: &body, in: name)
      packet = .publish(
        .init(
          topic: topic, payload: body.readSlice(length: body.readableBytes)!, qos: qos, retain: flags & 0x01 != 0,
          duplicate: flags & 0x08 != 0, packetID: packetID))
    case 4: packet = .pubAck(packetID: try readPacketID(from: &body, in: name))
    case 5: packet = .pubRec(packetID: try readPacketID(from: &body, in: name))
    case 6: packet = .pubRel(packetID: try readPacketID(from: &body, in: name))
    case 7: packet = .pubComp(packetID: try readPacketID(from: &body, in: name))
    case 8:
      let packetID = try readPacketID(from: &body, in: name)
      var subscriptions: [MQTTSubscription] = []
      repeat {
        let filter = try readString(from: &body, in: name)
        guard let requested: UInt8 = body.readInteger() else { throw truncated(name) }
        guard requested & 0xFC == 0, let qos = MQTTQoS(rawValue: requested) else {
          throw MQTTProtocolError("malformed SUBSCRIBE: requested QoS byte \(requested) is not 0, 1 or 2")
        }
        try checkTopicFilter(filter, in: name)
        subscriptions.append(.init(topicFilter: filter, qos: qos))
      } while body.readableBytes > 0
      packet = .subscribe(.init(packetID: packetID, subscriptions: subscriptions))
    case 9:
      let packetID = try readPacketID(from: &body, in: name)
      guard body.readableBytes > 0 else { throw MQTTProtocolError("malformed SUBACK: it has no return codes") }
      var granted: [MQTTQoS?] = []
      while let code: UInt8 = body.readInteger() {
        if code == 0x80 {
          granted.append(nil)
        } else if let qos = MQTTQoS(rawValue: code) {
          granted.append(qos)
        } else {
          throw MQTTProtocolError("malformed SUBACK: return code \(code) is not 0, 1, 2 or 128")
        }
      }
      packet = .subAck(.init(packetID: packetID, grantedQoS: granted))
    case 10:
      let packetID = try readPacketID(from: &body, in: name)
      var filters: [String] = []
      repeat {
        let filter = try readString(from: &body, in: name)
        try checkTopicFilter(filter, in: name)
        filters.append(filter)
      } while body.readableBytes > 0
      packet = .unsubscribe(.init(packetID: packetID, topicFilters: filters))
    case 11: packet = .unsubAck(packetID: try readPacketID(from: &body, in: name))
    case 12: packet = .pingReq
    case 13: packet = .pingResp
    default: packet = .disconnect
    }
    guard body.readableBytes == 0 else {
      throw MQTTProtocolError("malformed \(name): \(body.readableBytes) bytes left over after its last field")
    }
    return packet
  }

  private static func decodeConnect(_ body: inout ByteBuffer) throws(MQTTProtocolError) -> MQTTPacket.Connect {
    let name = "CONNECT"
    let protocolName = try readString(from: &body, in: name)
    guard let level: UInt8 = body.readInteger(), let connectFlags: UInt8 = body.readInteger(),
      let keepAlive: UInt16 = body.readInteger()
    else { throw truncated(name) }
    guard protocolName == "MQTT", level == 4 else {
      throw MQTTProtocolError("unsupported CONNECT: protocol \"\(protocolName)\" level \(level), not \"MQTT\" level 4 (3.1.1)")
    }
    guard connectFlags & 0x01 == 0 else { throw MQTTProtocolError("malformed CONNECT: the reserved flag is set") }
    let hasWill = connectFlags & 0x04 != 0
    let willQoSBits = (connectFlags >> 3) & 0x03
    let willRetain = connectFlags & 0x20 != 0
    guard let willQoS = MQTTQoS(rawValue: willQoSBits) else { throw MQTTProtocolError("malformed CONNECT: will QoS 3") }
    if !hasWill && (willQoSBits != 0 || willRetain) {
      throw MQTTProtocolError("malformed CONNECT: will QoS or retain set without a will")
    }
    let hasUsername = connectFlags & 0x80 != 0
    let hasPassword = connectFlags & 0x40 != 0
    guard hasUsername || !hasPassword else {
      throw MQTTProtocolError("malformed CONNECT: a password without a user name")
    }
    let clientID = try readString(from: &body, in: name)
    var will: MQTTPacket.Will?
    if hasWill {
      let topic = try readString(from: &body, in: name)
      will = .init(topic: topic, payload: try readBinary(from: &body, in: name), qos: willQoS, retain: willRetain)
    }
    let username = hasUsername ? try readString(from: &body, in: name) : nil
    let password = hasPassword ? try readBinary(from: &body, in: name) : nil
    return .init(
      clientID: clientID, cleanSession: connectFlags & 0x02 != 0, keepAliveSeconds: keepAlive, will: will,
      username: username, password: password)
  }

  private static func readPacketID(from body: inout ByteBuffer, in name: String) throws(MQTTProtocolError) -> UInt16 {
    guard let packetID: UInt16 = body.readInteger() else { throw truncated(name) }
    guard packetID != 0 else { throw MQTTProtocolError("malformed \(name): packet identifier 0") }
    return packetID
  }

  private static func readBinary(from body: inout ByteBuffer, in name: String) throws(MQTTProtocolError) -> [UInt8] {
    guard let length: UInt16 = body.readInteger(), let bytes = body.readBytes(length: Int(length)) else {
      throw truncated(name)
    }
    return bytes
  }

  private static func readString(from body: inout ByteBuffer, in name: String) throws(MQTTProtocolError) -> String {
    let bytes = try readBinary(from: &body, in: name)
    guard let string = String(validating: bytes, as: UTF8.self) else {
      throw MQTTProtocolError("malformed \(name): a string is not valid UTF-8")
    }
    guard !bytes.contains(0) else { throw MQTTProtocolError("malformed \(name): a string contains U+0000") }
    return string
  }

  private static func readTopicName(from body: inout ByteBuffer) throws(MQTTProtocolError) -> String {
    let topic = try readString(from: &body, in: "PUBLISH")
    guard MQTTTopic.isValidName(topic) else {
      throw MQTTProtocolError("malformed PUBLISH: topic name \"\(topic.prefix(80))\" is empty or has a wildcard")
    }
    return topic
  }

  private static func checkTopicFilter(_ filter: String, in name: String) throws(MQTTProtocolError) {
    guard MQTTTopic.isValidFilter(filter) else {
      throw MQTTProtocolError("malformed \(name): \"\(filter.prefix(80))\" is not a valid topic filter")
    }
  }

  private static func truncated(_ name: String) -> MQTTProtocolError {
    MQTTProtocolError("malformed \(name): a field runs past the end of the packet")
  }
}
