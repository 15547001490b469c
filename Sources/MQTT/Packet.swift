import NIOCore

/// An MQTT 3.1.1 control packet (OASIS standard, 29 October 2014), every one of the 14 kinds.
///
/// Packets are values: ``encode(into:)`` writes one, ``MQTTPacketParser`` reads them back.
public enum MQTTPacket: Sendable, Hashable {
  case connect(Connect)
  case connAck(ConnAck)
  case publish(Publish)
  case pubAck(packetID: UInt16)
  case pubRec(packetID: UInt16)
  case pubRel(packetID: UInt16)
  case pubComp(packetID: UInt16)
  case subscribe(Subscribe)
  case subAck(SubAck)
  case unsubscribe(Unsubscribe)
  case unsubAck(packetID: UInt16)
  case pingReq
  case pingResp
  case disconnect

  /// CONNECT: the first packet a client sends.
  public struct Connect: Sendable, Hashable {
    /// The client identifier (may be empty with a clean session; the broker then assigns one).
    public var clientID: String
    /// Whether the broker discards any earlier session of this client id and keeps none after.
    public var cleanSession: Bool
    /// The most seconds between two packets from the client; `0` turns keepalive off.
    public var keepAliveSeconds: UInt16
    /// The message the broker publishes if the client vanishes without DISCONNECT.
    public var will: Will?
    /// Optional user name.
    public var username: String?
    /// Optional password (binary in MQTT; a password needs a user name in 3.1.1).
    public var password: [UInt8]?

    /// Creates a CONNECT.
    public init(
      clientID: String, cleanSession: Bool = true, keepAliveSeconds: UInt16 = 60,
      will: Will? = nil, username: String? = nil, password: [UInt8]? = nil
    ) {
      self.clientID = clientID
      self.cleanSession = cleanSession
      self.keepAliveSeconds = keepAliveSeconds
      self.will = will
      self.username = username
      self.password = password
    }
  }

  /// The last-will message of a CONNECT.
  public struct Will: Sendable, Hashable {
    /// Where the will is published.
    public var topic: String
    /// What it says.
    public var payload: [UInt8]
    /// Its QoS.
    public var qos: MQTTQoS
    /// Whether the broker retains it.
    public var retain: Bool

    /// Creates a will.
    public init(topic: String, payload: [UInt8], qos: MQTTQoS = .atMostOnce, retain: Bool = false) {
      self.topic = topic
      self.payload = payload
      self.qos = qos
      self.retain = retain
    }
  }

  /// CONNACK: the broker's answer to CONNECT.
  public struct ConnAck: Sendable, Hashable {
    /// Whether the broker still had a session for this client id (never with a clean session).
    public var sessionPresent: Bool
    /// Whether the connection is accepted, and why not.
    public var returnCode: MQTTConnectReturnCode

    /// Creates a CONNACK.
    public init(sessionPresent: Bool, returnCode: MQTTConnectReturnCode) {
      self.sessionPresent = sessionPresent
      self.returnCode = returnCode
    }
  }

  /// PUBLISH: an application message, either way.
  public struct Publish: Sendable, Hashable {
    /// The topic name (no wildcards).
    public var topic: String
    /// The message body, any bytes.
    public var payload: ByteBuffer
    /// Its delivery guarantee.
    public var qos: MQTTQoS
    /// Whether the broker keeps it as the topic's last known value.
    public var retain: Bool
    /// Whether this is a redelivery of a message sent before (QoS 1 and 2 only).
    public var duplicate: Bool
    /// The packet identifier; present exactly when `qos` is above 0.
    public var packetID: UInt16?

    /// Creates a PUBLISH.
    public init(
      topic: String, payload: ByteBuffer, qos: MQTTQoS = .atMostOnce, retain: Bool = false,
      duplicate: Bool = false, packetID: UInt16? = nil
    ) {
      self.topic = topic
      self.payload = payload
      self.qos = qos
      self.retain = retain
      self.duplicate = duplicate
      self.packetID = packetID
    }
  }

  /// SUBSCRIBE: topic filters, each with the most QoS wanted.
  public struct Subscribe: Sendable, Hashable {
    /// The packet identifier its SUBACK answers with.
    public var packetID: UInt16
    /// At least one filter.
    public var subscriptions: [MQTTSubscription]

    /// Creates a SUBSCRIBE.
    public init(packetID: UInt16, subscriptions: [MQTTSubscription]) {
      self.packetID = packetID
      self.subscriptions = subscriptions
    }
  }

  /// SUBACK: one result per filter of the SUBSCRIBE, in order.
  public struct SubAck: Sendable, Hashable {
    /// The SUBSCRIBE's packet identifier.
    public var packetID: UInt16
    /// The QoS granted to each filter, or `nil` where the broker refused it (0x80).
    public var grantedQoS: [MQTTQoS?]

    /// Creates a SUBACK.
    public init(packetID: UInt16, grantedQoS: [MQTTQoS?]) {
      self.packetID = packetID
      self.grantedQoS = grantedQoS
    }
  }

  /// UNSUBSCRIBE: topic filters to drop.
  public struct Unsubscribe: Sendable, Hashable {
    /// The packet identifier its UNSUBACK answers with.
    public var packetID: UInt16
    /// At least one filter.
    public var topicFilters: [String]

    /// Creates an UNSUBSCRIBE.
    public init(packetID: UInt16, topicFilters: [String]) {
      self.packetID = packetID
      self.topicFilters = topicFilters
    }
  }
}

/// The delivery guarantee of a message.
public enum MQTTQoS: UInt8, Sendable, Hashable, Comparable, CaseIterable {
  /// QoS 0: sent once, never acknowledged.
  case atMostOnce = 0
  /// QoS 1: acknowledged with PUBACK, resent until then, so possibly delivered twice.
  case atLeastOnce = 1
  /// QoS 2: a four-packet handshake delivers it once.
  case exactlyOnce = 2

  /// Orders by level: at most once < at least once < exactly once.
  public static func < (lhs: MQTTQoS, rhs: MQTTQoS) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One topic filter of a SUBSCRIBE.
public struct MQTTSubscription: Sendable, Hashable {
  /// The filter; `+` matches one level, a final `#` any number.
  public var topicFilter: String
  /// The most QoS the broker should deliver with.
  public var qos: MQTTQoS

  /// Creates a subscription.
  public init(topicFilter: String, qos: MQTTQoS) {
    self.topicFilter = topicFilter
    self.qos = qos
  }
}

/// A CONNACK's return code.
public enum MQTTConnectReturnCode: Sendable, Hashable, CustomStringConvertible {
  /// 0: connection accepted.
  case accepted
  /// 1: the broker does not speak MQTT 3.1.1.
  case unacceptableProtocolVersion
  /// 2: the client identifier is not allowed.
  case identifierRejected
  /// 3: the MQTT service is unavailable.
  case serverUnavailable
  /// 4: the user name or password is malformed or wrong.
  case badUsernameOrPassword
  /// 5: the client is not authorized to connect.
  case notAuthorized
  /// 6–255: reserved codes a 3.1.1 broker must not send.
  case reserved(UInt8)

  /// Creates the code from its byte.
  public init(byte: UInt8) {
    switch byte {
    case 0: self = .accepted
    case 1: self = .unacceptableProtocolVersion
    case 2: self = .identifierRejected
    case 3: self = .serverUnavailable
    case 4: self = .badUsernameOrPassword
    case 5: self = .notAuthorized
    default: self = .reserved(byte)
    }
  }

  /// The code's byte.
  public var byte: UInt8 {
    switch self {
    case .accepted: 0
    case .unacceptableProtocolVersion: 1
    case .identifierRejected: 2
    case .serverUnavailable: 3
    case .badUsernameOrPassword: 4
    case .notAuthorized: 5
    case .reserved(let byte): byte
    }
  }

  /// Whether trying again later may succeed without a change of settings.
  public var isTransient: Bool {
    switch self {
    case .serverUnavailable, .reserved: true
    case .accepted, .unacceptableProtocolVersion, .identifierRejected, .badUsernameOrPassword, .notAuthorized: false
    }
  }

  /// The return code and its meaning, for logs.
  public var description: String {
    switch self {
    case .accepted: "0 (accepted)"
    case .unacceptableProtocolVersion: "1 (unacceptable protocol version: the broker does not speak MQTT 3.1.1)"
    case .identifierRejected: "2 (identifier rejected: the broker does not accept this client id)"
    case .serverUnavailable: "3 (server unavailable)"
    case .badUsernameOrPassword: "4 (bad user name or password)"
    case .notAuthorized: "5 (not authorized)"
    case .reserved(let byte): "\(byte) (reserved: not an MQTT 3.1.1 return code)"
    }
  }
}

extension MQTTPacket {
  /// The packet type's number in the fixed header (1–14).
  public var typeNumber: UInt8 {
    switch self {
    case .connect: 1
    case .connAck: 2
    case .publish: 3
    case .pubAck: 4
    case .pubRec: 5
    case .pubRel: 6
    case .pubComp: 7
    case .subscribe: 8
    case .subAck: 9
    case .unsubscribe: 10
    case .unsubAck: 11
    case .pingReq: 12
    case .pingResp: 13
    case .disconnect: 14
    }
  }

  /// The packet type's name as the standard writes it, for logs.
  public var typeName: String { Self.typeName(typeNumber) }

  static func typeName(_ number: UInt8) -> String {
    let names = [
      "reserved(0)", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK",
      "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "reserved(15)",
    ]
    return names[Int(number & 0x0F)]
  }
}
