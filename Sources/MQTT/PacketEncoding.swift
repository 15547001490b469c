import NIOCore

extension MQTTPacket {
  /// The largest remaining length MQTT can express: 268,435,455 bytes.
  public static let maximumRemainingLength = 268_435_455

  /// Appends the packet's wire form to `buffer`.
  ///
  /// - Throws: ``MQTTProtocolError`` when the packet cannot be written as it is (a string over
  ///   65,535 bytes, a QoS 1/2 PUBLISH without a packet id, an empty SUBSCRIBE, a body over
  ///   ``maximumRemainingLength``); `buffer` is then unchanged.
  public func encode(into buffer: inout ByteBuffer) throws(MQTTProtocolError) {
    var body = ByteBuffer()
    let flags = try encodeBody(into: &body)
    guard body.readableBytes <= Self.maximumRemainingLength else {
      throw MQTTProtocolError("a \(typeName) of \(body.readableBytes) bytes is over MQTT's 268,435,455-byte limit")
    }
    buffer.writeInteger(typeNumber << 4 | flags)
    Self.writeRemainingLength(body.readableBytes, into: &buffer)
    buffer.writeBuffer(&body)
  }

  /// The packet's wire form.
  public func encoded() throws(MQTTProtocolError) -> ByteBuffer {
    var buffer = ByteBuffer()
    try encode(into: &buffer)
    return buffer
  }

  /// Writes the variable header and payload; returns the fixed header's flag bits.
  private func encodeBody(into body: inout ByteBuffer) throws(MQTTProtocolError) -> UInt8 {
    switch self {
    case .connect(let connect):
      try Self.writeString("MQTT", into: &body)
      body.writeInteger(UInt8(4))  // protocol level of 3.1.1
      var connectFlags: UInt8 = connect.cleanSession ? 0x02 : 0
      if let will = connect.will {
        connectFlags |= 0x04 | will.qos.rawValue << 3 | (will.retain ? 0x20 : 0)
      }
      if connect.username != nil { connectFlags |= 0x80 }
      if connect.password != nil {
        guard connect.username != nil else {
          throw MQTTProtocolError("an MQTT 3.1.1 CONNECT cannot carry a password without a user name")
        }
        connectFlags |= 0x40
      }
      body.writeInteger(connectFlags)
      body.writeInteger(connect.keepAliveSeconds)
      try Self.writeString(connect.clientID, into: &body)
      if let will = connect.will {
        try Self.writeString(will.topic, into: &body)
        try Self.writeBinary(will.payload, into: &body)
      }
      if let username = connect.username { try Self.writeString(username, into: &body) }
      if let password = connect.password { try Self.writeBinary(password, into: &body) }
      return 0

    case .connAck(let connAck):
      body.writeInteger(UInt8(connAck.sessionPresent ? 1 : 0))
      body.writeInteger(connAck.returnCode.byte)
      return 0

    case .publish(let publish):
      try Self.writeString(publish.topic, into: &body)
      if publish.qos != .atMostOnce {
        guard let packetID = publish.packetID else {
          throw MQTTProtocolError("a QoS \(publish.qos.rawValue) PUBLISH needs a packet identifier")
        }
        body.writeInteger(packetID)
      }
      var payload = publish.payload
      body.writeBuffer(&payload)
      return (publish.duplicate ? 0x08 : 0) | publish.qos.rawValue << 1 | (publish.retain ? 0x01 : 0)

    case .pubAck(let packetID), .pubRec(let packetID), .pubComp(let packetID), .unsubAck(let packetID):
      body.writeInteger(packetID)
      return 0

    case .pubRel(let packetID):
      body.writeInteger(packetID)
      return 0x02

    case .subscribe(let subscribe):
      guard !subscribe.subscriptions.isEmpty else {
        throw MQTTProtocolError("a SUBSCRIBE needs at least one topic filter")
      }
      body.writeInteger(subscribe.packetID)
      for subscription in subscribe.subscriptions {
        try Self.writeString(subscription.topicFilter, into: &body)
        body.writeInteger(subscription.qos.rawValue)
      }
      return 0x02

    case .subAck(let subAck):
      body.writeInteger(subAck.packetID)
      for granted in subAck.grantedQoS {
        body.writeInteger(granted?.rawValue ?? 0x80)
      }
      return 0

    case .unsubscribe(let unsubscribe):
      guard !unsubscribe.topicFilters.isEmpty else {
        throw MQTTProtocolError("an UNSUBSCRIBE needs at least one topic filter")
      }
      body.writeInteger(unsubscribe.packetID)
      for filter in unsubscribe.topicFilters {
        try Self.writeString(filter, into: &body)
      }
      return 0x02

    case .pingReq, .pingResp, .disconnect:
      return 0
    }
  }

  static func writeRemainingLength(_ length: Int, into buffer: inout ByteBuffer) {
    var rest = length
    repeat {
      var byte = UInt8(rest & 0x7F)
      rest >>= 7
      if rest > 0 { byte |= 0x80 }
      buffer.writeInteger(byte)
    } while rest > 0
  }

  private static func writeString(_ string: String, into buffer: inout ByteBuffer) throws(MQTTProtocolError) {
    let length = string.utf8.count
    guard length <= Int(UInt16.max) else {
      throw MQTTProtocolError("a string of \(length) bytes is over MQTT's 65,535-byte limit")
    }
    buffer.writeInteger(UInt16(length))
    buffer.writeString(string)
  }

  private static func writeBinary(_ bytes: [UInt8], into buffer: inout ByteBuffer) throws(MQTTProtocolError) {
    guard bytes.count <= Int(UInt16.max) else {
      throw MQTTProtocolError("a field of \(bytes.count) bytes is over MQTT's 65,535-byte limit")
    }
    buffer.writeInteger(UInt16(bytes.count))
    buffer.writeBytes(bytes)
  }
}

/// A packet that breaks MQTT 3.1.1: malformed bytes from the peer, or a packet that cannot be
/// written. The connection it came from cannot be trusted further.
public struct MQTTProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
  /// What is wrong, for a person.
  public var message: String

  /// Creates an error.
  public init(_ message: String) {
    self.message = message
  }

  /// The message alone.
  public var description: String { message }
}
