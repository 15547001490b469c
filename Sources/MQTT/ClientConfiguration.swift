/// How an ``MQTTClient`` connects, subscribes and paces itself.
public struct MQTTClientConfiguration: Sendable {
  /// The broker's host name or address.
  public var host: String
  /// The broker's port.
  public var port: Int
  /// The client identifier; a persistent session is kept under it.
  public var clientID: String
  /// Whether each connection starts a new session (`true`), or the broker keeps the session —
  /// subscriptions and QoS 1 messages that arrive while the client is away — between them.
  public var cleanSession: Bool
  /// The keepalive interval: a PINGREQ goes out when nothing else has for half of it, and a
  /// broker silent for a whole interval after a PINGREQ is taken for gone.
  public var keepAlive: Duration
  /// Optional user name.
  public var username: String?
  /// Optional password (needs a user name).
  public var password: [UInt8]?
  /// A last will the broker publishes if the client vanishes.
  public var will: MQTTPacket.Will?
  /// The topic filters subscribed on every connection.
  public var subscriptions: [MQTTSubscription]
  /// The bound on the TCP connect and on the CONNACK and SUBACK that follow.
  public var connectTimeout: Duration
  /// The largest PUBLISH delivered with its payload; larger ones are delivered as
  /// ``MQTTDelivery/oversized(_:)`` without being held in memory.
  public var maximumPacketSize: Int
  /// The most deliveries running at once.
  public var maxConcurrentDeliveries: Int
  /// The most messages waiting for a delivery slot; a QoS 0 message beyond it (or beyond
  /// ``maxQueuedBytes``) is dropped and counted in the log. QoS 1 messages are never dropped:
  /// the broker sends no more of them than its in-flight window while they are unacknowledged.
  public var maxQueuedDeliveries: Int
  /// The most payload bytes waiting for a delivery slot (see ``maxQueuedDeliveries``).
  public var maxQueuedBytes: Int
  /// The most QoS 0 publishes held while disconnected; the oldest is dropped (and logged) beyond.
  public var maxHeldPublishes: Int
  /// The first wait before reconnecting; it doubles after each failure, up to
  /// ``maxReconnectDelay``, with ±20 % jitter.
  public var reconnectDelay: Duration
  /// The longest wait before reconnecting.
  public var maxReconnectDelay: Duration

  /// Creates a configuration with the documented defaults.
  public init(
    host: String = "127.0.0.1",
    port: Int = 1883,
    clientID: String,
    cleanSession: Bool = true,
    keepAlive: Duration = .seconds(60),
    username: String? = nil,
    password: [UInt8]? = nil,
    will: MQTTPacket.Will? = nil,
    subscriptions: [MQTTSubscription] = [],
    connectTimeout: Duration = .seconds(10),
    maximumPacketSize: Int = 4 << 20,
    maxConcurrentDeliveries: Int = 16,
    maxQueuedDeliveries: Int = 100_000,
    maxQueuedBytes: Int = 64 << 20,
    maxHeldPublishes: Int = 10_000,
    reconnectDelay: Duration = .milliseconds(250),
    maxReconnectDelay: Duration = .seconds(30)
  ) {
    self.host = host
    self.port = port
    self.clientID = clientID
    self.cleanSession = cleanSession
    self.keepAlive = keepAlive
    self.username = username
    self.password = password
    self.will = will
    self.subscriptions = subscriptions
    self.connectTimeout = connectTimeout
    self.maximumPacketSize = maximumPacketSize
    self.maxConcurrentDeliveries = maxConcurrentDeliveries
    self.maxQueuedDeliveries = maxQueuedDeliveries
    self.maxQueuedBytes = maxQueuedBytes
    self.maxHeldPublishes = maxHeldPublishes
    self.reconnectDelay = reconnectDelay
    self.maxReconnectDelay = maxReconnectDelay
  }
}

/// Why an ``MQTTClient`` stopped, or a publish failed.
public struct MQTTClientError: Error, Sendable, Hashable, CustomStringConvertible {
  /// What went wrong, for a person.
  public var message: String

  /// Creates an error.
  public init(_ message: String) {
    self.message = message
  }

  /// The message alone.
  public var description: String { message }
}
