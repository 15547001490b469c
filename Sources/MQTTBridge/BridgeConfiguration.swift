import Logging
import MQTT
import SettingValues

/// Every setting of the MQTT bridge, from environment-style variables (flags are folded into
/// the same dictionary by the executable).
public struct BridgeConfiguration: Sendable {
  /// The broker's host (`MQTT_HOST`, default `127.0.0.1`).
  public var brokerHost = "127.0.0.1"
  /// The broker's port (`MQTT_PORT`, default 1883).
  public var brokerPort = 1883
  /// The MQTT client id (`MQTT_CLIENT_ID`, default `fxmqtt-bridge-<host name>`).
  public var clientID: String
  /// The topic filter subscribed to (`MQTT_TOPIC`, or the original's `topic`; default `gRPC`).
  public var topicFilter = "gRPC"
  /// The QoS of the subscription and of the replies (`MQTT_QOS`, 0 or 1, default 1).
  public var qos = MQTTQoS.atLeastOnce
  /// Whether each connection starts a new session (`MQTT_CLEAN_SESSION`, default true).
  public var cleanSession = true
  /// The MQTT keepalive (`MQTT_KEEPALIVE`, default 60s).
  public var keepAlive = Duration.seconds(60)
  /// Optional user name (`MQTT_USERNAME`).
  public var username: String?
  /// Optional password (`MQTT_PASSWORD`, or the first line of the file `MQTT_PASSWORD_FILE`).
  public var password: String?
  /// The largest message payload passed to the function (`MQTT_MAX_PAYLOAD`, default 4MiB);
  /// larger ones get an error reply and are not held in memory.
  public var maxPayloadBytes = 4 << 20
  /// The function's gRPC address (`FX_TARGET`, `host:port`, default `127.0.0.1:50051`).
  public var targetHost = "127.0.0.1"
  /// The port of ``targetHost``.
  public var targetPort = 50051
  /// The RPC used (`FX_METHOD`: `call`, `call-bytes` or `invoke`; default `call`).
  public var method = FunctionMethod.call
  /// The function called (`FX_FUNCTION`, default `echo`): `Invoke`'s `Service`, `Call`'s
  /// `Info.FunctionName`.
  public var function = "echo"
  /// The deadline of each call (`FX_TIMEOUT`, default 30s).
  public var callTimeout = Duration.seconds(30)
  /// The most calls in flight at once (`BRIDGE_MAX_INFLIGHT`, default 16); further messages
  /// wait (QoS 1 ones unacknowledged, so the broker holds them).
  public var maxInFlight = 16
  /// Where replies go (`REPLY_TOPIC`, default `{topic}/reply`).
  public var replyTopic = ReplyTopic("{topic}/reply")!
  /// Where errors go (`ERROR_TOPIC`, default `{topic}/error`).
  public var errorTopic = ReplyTopic("{topic}/error")!
  /// How long messages already received may still be handled after SIGTERM
  /// (`DRAIN_TIMEOUT`, default 10s).
  public var drainTimeout = Duration.seconds(10)
  /// The least severe log level written (`LOG_LEVEL`, default `info`).
  public var logLevel = Logger.Level.info

  /// The environment variables the bridge reads.
  public enum Setting {
    /// The broker host.
    public static let brokerHost = "MQTT_HOST"
    /// The broker port.
    public static let brokerPort = "MQTT_PORT"
    /// The MQTT client id.
    public static let clientID = "MQTT_CLIENT_ID"
    /// The topic filter subscribed to.
    public static let topic = "MQTT_TOPIC"
    /// The original `gRPC_Broker.py`'s name for the topic; `MQTT_TOPIC` wins.
    public static let originalTopic = "topic"
    /// The QoS of the subscription and the replies.
    public static let qos = "MQTT_QOS"
    /// Whether the broker forgets the session between connections.
    public static let cleanSession = "MQTT_CLEAN_SESSION"
    /// The keepalive interval.
    public static let keepAlive = "MQTT_KEEPALIVE"
    /// The user name.
    public static let username = "MQTT_USERNAME"
    /// The password.
    public static let password = "MQTT_PASSWORD"
    /// A file whose first line is the password.
    public static let passwordFile = "MQTT_PASSWORD_FILE"
    /// The largest payload passed to the function.
    public static let maxPayload = "MQTT_MAX_PAYLOAD"
    /// The function's gRPC `host:port`.
    public static let target = "FX_TARGET"
    /// The gRPC method called: `call`, `call-bytes` or `invoke`.
    public static let method = "FX_METHOD"
    /// The function called.
    public static let function = "FX_FUNCTION"
    /// The deadline of each call.
    public static let callTimeout = "FX_TIMEOUT"
    /// The most calls at once.
    public static let maxInFlight = "BRIDGE_MAX_INFLIGHT"
    /// Where replies are published.
    public static let replyTopic = "REPLY_TOPIC"
    /// Where failures are published.
    public static let errorTopic = "ERROR_TOPIC"
    /// How long received messages may still be answered after SIGTERM.
    public static let drainTimeout = "DRAIN_TIMEOUT"
    /// The log level.
    public static let logLevel = "LOG_LEVEL"
  }

  /// Reads the settings; an unset or blank variable keeps its default.
  ///
  /// - Parameters:
  ///   - environment: the variables.
  ///   - hostName: the machine's name, for the default client id.
  ///   - readFile: reads `MQTT_PASSWORD_FILE` (the file system in production).
  /// - Throws: ``BridgeConfigurationError`` naming the variable, its value and what is accepted.
  public init(
    environment: [String: String], hostName: String, readFile: (String) throws -> String
  ) throws(BridgeConfigurationError) {
    let settings = SettingsEnvironment(environment)
    clientID = Self.defaultClientID(hostName: hostName)
    if let text = settings.value(Setting.brokerHost) { brokerHost = text }
    if let text = settings.value(Setting.brokerPort) {
      guard let port = SettingsEnvironment.port(text), port > 0 else {
        throw .invalid(Setting.brokerPort, text, "expected a port number from 1 to 65535")
      }
      brokerPort = port
    }
    if let text = settings.value(Setting.clientID) {
      guard text.utf8.count <= 65535 else { throw .invalid(Setting.clientID, text, "expected at most 65,535 bytes") }
      clientID = text
    }
    let topicName = settings.value(Setting.topic) != nil ? Setting.topic : Setting.originalTopic
    if let text = settings.value(topicName) {
      guard MQTTTopic.isValidFilter(text) else {
        throw .invalid(topicName, text, "expected a topic filter such as sensors/+/temperature or devices/#")
      }
      topicFilter = text
    }
    if let text = settings.value(Setting.qos) {
      guard let level = UInt8(text), let qos = MQTTQoS(rawValue: level), qos != .exactlyOnce else {
        throw .invalid(Setting.qos, text, "expected 0 or 1")
      }
      self.qos = qos
    }
    if let text = settings.value(Setting.cleanSession) {
      guard let flag = Self.parseBool(text) else { throw .invalid(Setting.cleanSession, text, "expected true or false") }
      cleanSession = flag
    }
    if let text = settings.value(Setting.keepAlive) {
      guard let duration = GoDuration.parse(text), duration <= .seconds(65535) else {
        throw .invalid(Setting.keepAlive, text, "expected a duration up to 18h12m15s, such as 60s; 0 turns keepalive off")
      }
      keepAlive = duration
    }
    username = settings.value(Setting.username)
    password = settings.value(Setting.password)
    if let path = settings.value(Setting.passwordFile) {
      do {
        password = try readFile(path).split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init)
      } catch {
        throw .invalid(Setting.passwordFile, path, "the file cannot be read (\(error))")
      }
    }
    if password != nil && username == nil {
      throw BridgeConfigurationError("MQTT 3.1.1 sends a password only with a user name: set \(Setting.username) too")
    }
    if let text = settings.value(Setting.maxPayload) {
      guard let bytes = ByteCount.parse(text), (1...MQTTPacket.maximumRemainingLength).contains(bytes) else {
        throw .invalid(Setting.maxPayload, text, "expected a size from 1 byte to 256MiB, such as 4MiB or 65536")
      }
      maxPayloadBytes = bytes
    }
    if let text = settings.value(Setting.target) {
      guard let (host, port) = Self.splitHostPort(text) else {
        throw .invalid(Setting.target, text, "expected host:port such as 127.0.0.1:50051 or gateway.openfx:31113")
      }
      targetHost = host
      targetPort = port
    }
    if let text = settings.value(Setting.method) {
      guard let method = FunctionMethod(rawValue: text.lowercased()) else {
        throw .invalid(Setting.method, text, "expected call, call-bytes or invoke")
      }
      self.method = method
    }
    if let text = settings.value(Setting.function) { function = text }
    if let text = settings.value(Setting.callTimeout) {
      guard let duration = GoDuration.parse(text), duration > .zero else {
        throw .invalid(Setting.callTimeout, text, "expected a duration above zero, such as 30s or 500ms")
      }
      callTimeout = duration
    }
    if let text = settings.value(Setting.maxInFlight) {
      guard let count = Int(text), (1...10_000).contains(count) else {
        throw .invalid(Setting.maxInFlight, text, "expected a number of calls from 1 to 10000")
      }
      maxInFlight = count
    }
    for (name, keyPath) in [(Setting.replyTopic, \Self.replyTopic), (Setting.errorTopic, \Self.errorTopic)] {
      guard let text = settings.value(name) else { continue }
      guard let topic = ReplyTopic(text), text != ReplyTopic.placeholder else {
        throw .invalid(
          name, text, "expected a topic name in which {topic} (at most once) stands for the message's topic, such as {topic}/reply")
      }
      self[keyPath: keyPath] = topic
    }
    for template in [replyTopic, errorTopic] where !template.template.contains(ReplyTopic.placeholder) {
      if MQTTTopic.matches(filter: topicFilter, topic: template.template) {
        throw BridgeConfigurationError(
          "the reply or error topic \(template.template) matches the subscription \(topicFilter): replies would come back as requests")
      }
    }
    if let text = settings.value(Setting.drainTimeout) {
      guard let duration = GoDuration.parse(text) else {
        throw .invalid(Setting.drainTimeout, text, "expected a duration such as 10s")
      }
      drainTimeout = duration
    }
    if let text = settings.value(Setting.logLevel) {
      guard let level = Logger.Level(rawValue: text.lowercased()) else {
        throw .invalid(Setting.logLevel, text, "expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
      }
      logLevel = level
    }
  }

  /// `fxmqtt-bridge-<host name>`, cut to the 23 characters every broker accepts.
  static func defaultClientID(hostName: String) -> String {
    let safe = hostName.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    return String("fxmqtt-bridge-\(safe)".prefix(23))
  }

  static func parseBool(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "1", "true", "yes", "on": true
    case "0", "false", "no", "off": false
    default: nil
    }
  }

  /// `host:port` or `[v6]:port`.
  static func splitHostPort(_ text: String) -> (String, Int)? {
    guard let colon = text.lastIndex(of: ":") else { return nil }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty, !host.contains(" "), let port = SettingsEnvironment.port(String(text[text.index(after: colon)...])),
      port > 0
    else { return nil }
    return (host, port)
  }

  /// The MQTT client settings these give.
  var clientConfiguration: MQTTClientConfiguration {
    MQTTClientConfiguration(
      host: brokerHost, port: brokerPort, clientID: clientID, cleanSession: cleanSession, keepAlive: keepAlive,
      username: username, password: password.map { Array($0.utf8) },
      subscriptions: [MQTTSubscription(topicFilter: topicFilter, qos: qos)],
      maximumPacketSize: maxPayloadBytes + 2 + 65535 + 2,
      maxConcurrentDeliveries: maxInFlight
    )
  }
}

/// A setting the bridge cannot use.
public struct BridgeConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
  /// What is wrong, naming the variable.
  public var message: String

  /// Creates an error.
  public init(_ message: String) {
    self.message = message
  }

  static func invalid(_ name: String, _ value: String, _ expectation: String) -> Self {
    Self("invalid \(name) \"\(value.prefix(200))\": \(expectation)")
  }

  /// The message alone.
  public var description: String { message }
}
