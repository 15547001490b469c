import ArgumentParser
import Logging
import MQTTBridge
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The command line: every flag sets the environment variable of the same meaning; the two
/// positional arguments are those of the original `python gRPC_Broker.py <topic> <function>`.
struct BridgeOptions: ParsableCommand {
  typealias Setting = BridgeConfiguration.Setting

  static let configuration = CommandConfiguration(
    commandName: "fxmqtt-bridge",
    abstract: "Passes MQTT messages to an OpenFx function over gRPC and publishes its replies.",
    discussion: "Replies go to REPLY_TOPIC ({topic}/reply), failures as \"STATUS: message\" to ERROR_TOPIC ({topic}/error)."
  )

  @Argument(help: "Topic filter to subscribe to (env MQTT_TOPIC or topic; default gRPC).")
  var topic: String?

  @Argument(help: "Function to call (env FX_FUNCTION; default echo).")
  var function: String?

  @Option(help: "Broker host (env MQTT_HOST; default 127.0.0.1).")
  var brokerHost: String?

  @Option(help: "Broker port (env MQTT_PORT; default 1883).")
  var brokerPort: String?

  @Option(help: "MQTT client id (env MQTT_CLIENT_ID; default fxmqtt-bridge-<host name>).")
  var clientID: String?

  @Option(help: "QoS of the subscription and replies, 0 or 1 (env MQTT_QOS; default 1).")
  var qos: String?

  @Option(help: "true: a new session per connection; false: the broker keeps it (env MQTT_CLEAN_SESSION; default true).")
  var cleanSession: String?

  @Option(help: "MQTT keepalive, e.g. 60s (env MQTT_KEEPALIVE; default 60s).")
  var keepAlive: String?

  @Option(help: "User name (env MQTT_USERNAME). The password comes from env MQTT_PASSWORD or MQTT_PASSWORD_FILE.")
  var username: String?

  @Option(help: "File whose first line is the password (env MQTT_PASSWORD_FILE).")
  var passwordFile: String?

  @Option(help: "Largest payload passed on, e.g. 4MiB (env MQTT_MAX_PAYLOAD; default 4MiB).")
  var maxPayload: String?

  @Option(help: "The function's gRPC host:port (env FX_TARGET; default 127.0.0.1:50051).")
  var target: String?

  @Option(help: "call, call-bytes (pb.FxWatcher) or invoke (pb.FxGateway) (env FX_METHOD; default call).")
  var method: String?

  @Option(help: "Deadline of each call, e.g. 30s (env FX_TIMEOUT; default 30s).")
  var timeout: String?

  @Option(name: .customLong("max-inflight"), help: "Most calls at once (env BRIDGE_MAX_INFLIGHT; default 16).")
  var maxInFlight: String?

  @Option(help: "Reply topic; {topic} is the message's (env REPLY_TOPIC; default {topic}/reply).")
  var replyTopic: String?

  @Option(help: "Error topic; {topic} is the message's (env ERROR_TOPIC; default {topic}/error).")
  var errorTopic: String?

  @Option(help: "Bound on answering received messages after SIGTERM (env DRAIN_TIMEOUT; default 10s).")
  var drainTimeout: String?

  @Option(help: "trace, debug, info, notice, warning, error or critical (env LOG_LEVEL; default info).")
  var logLevel: String?

  /// The flags and arguments given, as environment variables.
  var environment: [String: String] {
    let pairs: [(String, String?)] = [
      (Setting.topic, topic), (Setting.function, function), (Setting.brokerHost, brokerHost),
      (Setting.brokerPort, brokerPort), (Setting.clientID, clientID), (Setting.qos, qos),
      (Setting.cleanSession, cleanSession), (Setting.keepAlive, keepAlive), (Setting.username, username),
      (Setting.passwordFile, passwordFile), (Setting.maxPayload, maxPayload), (Setting.target, target),
      (Setting.method, method), (Setting.callTimeout, timeout), (Setting.maxInFlight, maxInFlight),
      (Setting.replyTopic, replyTopic), (Setting.errorTopic, errorTopic), (Setting.drainTimeout, drainTimeout),
      (Setting.logLevel, logLevel),
    ]
    return Dictionary(uniqueKeysWithValues: pairs.compactMap { name, value in value.map { (name, $0) } })
  }
}

/// Runs the bridge under ServiceLifecycle: SIGTERM/SIGINT stop new messages and let received
/// ones be answered within the drain timeout.
struct BridgeService: Service {
  let bridge: Bridge

  func run() async throws {
    try await withGracefulShutdownHandler {
      try await bridge.run()
    } onGracefulShutdown: {
      bridge.shutdown()
    }
  }
}

let configuration: BridgeConfiguration
do {
  let options = try BridgeOptions.parse(Array(CommandLine.arguments.dropFirst()))
  configuration = try BridgeConfiguration(
    environment: ProcessInfo.processInfo.environment.merging(options.environment) { $1 },
    hostName: ProcessInfo.processInfo.hostName,
    readFile: { path in try String(contentsOfFile: path, encoding: .utf8) }
  )
} catch let error as BridgeConfigurationError {
  BridgeOptions.exit(withError: ValidationError(error.message))
} catch {
  BridgeOptions.exit(withError: error)
}

let level = configuration.logLevel
LoggingSystem.bootstrap { label in
  var handler = StreamLogHandler.standardError(label: label)
  handler.logLevel = level
  return handler
}
let logger = Logger(label: "fxmqtt-bridge")
do {
  let bridge = try Bridge(configuration: configuration, logger: logger)
  var groupConfiguration = ServiceGroupConfiguration(
    services: [.init(service: BridgeService(bridge: bridge))],
    gracefulShutdownSignals: [.sigterm, .sigint],
    logger: logger
  )
  groupConfiguration.maximumGracefulShutdownDuration = configuration.drainTimeout
  try await ServiceGroup(configuration: groupConfiguration).run()
  exit(0)
} catch {
  logger.critical("\(error)")
  exit(1)
}
