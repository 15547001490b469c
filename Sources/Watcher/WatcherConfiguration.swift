#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import SettingValues

/// Every setting of the watcher, parsed from environment-style variables.
///
/// The process environment is passed in only at the top (``FxWatcher``); tests pass a
/// dictionary. Command-line flags are folded into the same dictionary, so both are checked
/// by the same rules and give the same messages.
public struct WatcherConfiguration: Sendable, Hashable {
  /// The address both ports bind; `0.0.0.0` (every IPv4 interface) by default, `::` for IPv6 too.
  public var host: String
  /// The port of the OpenFx gateway's calls (`WATCHER_PORT`, or OpenFx Go's `PORT`).
  public var port: Int
  /// The port of calls from other functions (`MESH_PORT`).
  public var meshPort: Int
  /// The handler to serve (`HANDLER_NAME`), or `nil` for the default one.
  public var handlerName: String?
  /// A handler library to load the handlers from (`HANDLER_FILE`) instead of the compiled-in
  /// ones, or `nil` (the default); see ``HandlerRegistry/init(libraryAt:)``.
  public var handlerFile: String?
  /// The health lock file, written once every port accepts and removed on shutdown.
  public var lockFilePath: String
  /// The least severe log level written (`LOG_LEVEL`).
  public var logLevel: Logger.Level
  /// How long in-flight calls may run on after SIGTERM/SIGINT before they are cancelled.
  public var drainTimeout: Duration
  /// The longest a call may run when neither `Info.Timeout` nor the caller's deadline is
  /// shorter (`EXEC_TIMEOUT`); `nil` for no default bound.
  public var execTimeout: Duration?
  /// The most calls the handler runs at once (`MAX_INFLIGHT`); `0` for no limit.
  public var maxInFlight: Int
  /// The largest input or output of one call, in bytes (`MAX_MESSAGE_BYTES`).
  public var maxMessageBytes: Int
  /// The function's name (`FUNCTION_NAME`): the `Service` the gateway methods answer to and the
  /// context's name when the caller sends none; `nil` for the handler's name.
  public var functionName: String?
  /// The port of the Prometheus metrics (`METRICS_PORT`), or `nil` for none (the default).
  public var metricsPort: Int?
  /// How long an event loop goes on polling its sockets after it wrote to a connection, before
  /// it sleeps; zero: it sleeps at once (`BUSY_POLL`, default 30 µs).
  public var busyPoll: Duration
  /// The namespace other functions live in (`MESH_NAMESPACE`), for ``meshAddressTemplate``.
  public var meshNamespace: String
  /// Where another function's mesh port is (`MESH_ADDRESS`): `host:port` with `{function}` and
  /// `{namespace}` filled in.
  public var meshAddressTemplate: String

  /// The defaults: OpenFx's ports 50051 and 50052 on every interface, `/tmp/.lock`, `info`,
  /// 10 s drain, 60 s call timeout, no in-flight limit, 4 MiB messages, mesh calls to
  /// `<function>.openfx-fn:50052`, no metrics port, 30 µs busy poll.
  public static var defaults: WatcherConfiguration {
    WatcherConfiguration()
  }

  /// Creates a configuration; every value defaults to its documented default.
  public init(
    host: String = "0.0.0.0",
    port: Int = 50051,
    meshPort: Int = 50052,
    handlerName: String? = nil,
    handlerFile: String? = nil,
    lockFilePath: String = "/tmp/.lock",
    logLevel: Logger.Level = .info,
    drainTimeout: Duration = .seconds(10),
    execTimeout: Duration? = .seconds(60),
    maxInFlight: Int = 0,
    maxMessageBytes: Int = 4 * 1024 * 1024,
    functionName: String? = nil,
    meshNamespace: String = "openfx-fn",
    meshAddressTemplate: String = "{function}.{namespace}:50052",
    metricsPort: Int? = nil,
    busyPoll: Duration = .microseconds(30)
  ) {
    self.host = host
    self.port = port
    self.meshPort = meshPort
    self.handlerName = handlerName
    self.handlerFile = handlerFile
    self.lockFilePath = lockFilePath
    self.logLevel = logLevel
    self.drainTimeout = drainTimeout
    self.execTimeout = execTimeout
    self.maxInFlight = maxInFlight
    self.maxMessageBytes = maxMessageBytes
    self.functionName = functionName
    self.meshNamespace = meshNamespace
    self.meshAddressTemplate = meshAddressTemplate
    self.metricsPort = metricsPort
    self.busyPoll = busyPoll
  }

  /// Reads the settings from `environment`; an unset or empty variable keeps its default.
  ///
  /// - Throws: ``WatcherError`` with code `invalidConfiguration`, naming the variable, its
  ///   value and what would be accepted.
  public init(environment: [String: String]) throws(WatcherError) {
    self = .defaults
    let settings = SettingsEnvironment(environment)
    func value(_ name: String) -> String? { settings.value(name) }
    if let text = value(Setting.host) {
      guard Self.isNumericAddress(text) else {
        throw Self.invalid(Setting.host, text, "expected a numeric IPv4 or IPv6 address such as 0.0.0.0, 127.0.0.1 or ::")
      }
      host = text
    }
    if let text = value(Setting.port) ?? value(Setting.goPort) {
      port = try Self.parsePort(text, name: value(Setting.port) != nil ? Setting.port : Setting.goPort)
    }
    if let text = value(Setting.meshPort) {
      meshPort = try Self.parsePort(text, name: Setting.meshPort)
    }
    if port == meshPort && port != 0 {
      throw WatcherError(
        .invalidConfiguration,
        "\(Setting.port) and \(Setting.meshPort) are both \(port): the gateway and mesh ports must differ"
      )
    }
    handlerName = value(Setting.handlerName)
    handlerFile = value(Setting.handlerFile)
    if let text = value(Setting.lockFile) {
      lockFilePath = text
    }
    if let text = value(Setting.logLevel) {
      guard let level = Logger.Level(rawValue: text.lowercased()) else {
        let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
        throw Self.invalid(Setting.logLevel, text, "expected one of \(levels)")
      }
      logLevel = level
    }
    if let text = value(Setting.drainTimeout) {
      drainTimeout = try Self.parseDuration(text, name: Setting.drainTimeout)
    }
    if let text = value(Setting.busyPoll) {
      let duration = try Self.parseDuration(text, name: Setting.busyPoll)
      guard duration <= Self.maximumBusyPoll else {
        throw Self.invalid(Setting.busyPoll, text, "expected at most 10ms (0 turns the poll off)")
      }
      busyPoll = duration
    }
    if let text = value(Setting.execTimeout) {
      let duration = try Self.parseDuration(text, name: Setting.execTimeout)
      execTimeout = duration == .zero ? nil : duration
    }
    if let text = value(Setting.maxInFlight) {
      guard let limit = Int(text), limit >= 0 else {
        throw Self.invalid(Setting.maxInFlight, text, "expected a whole number of calls, 0 for no limit")
      }
      maxInFlight = limit
    }
    if let text = value(Setting.maxMessageBytes) {
      guard let bytes = ByteCount.parse(text), (1...Self.maximumMessageBytes).contains(bytes) else {
        throw Self.invalid(
          Setting.maxMessageBytes, text, "expected a size from 1 byte to 1GiB, such as 4194304, 512KiB or 4MiB")
      }
      maxMessageBytes = bytes
    }
    functionName = value(Setting.functionName)
    if let text = value(Setting.metricsPort) {
      let metricsPort = try Self.parsePort(text, name: Setting.metricsPort)
      if metricsPort != 0 && (metricsPort == port || metricsPort == meshPort) {
        throw WatcherError(.invalidConfiguration, "\(Setting.metricsPort) \(metricsPort) is already the gateway or mesh port")
      }
      self.metricsPort = metricsPort
    }
    if let text = value(Setting.meshNamespace) {
      guard MeshAddress.isFunctionName(text) else {
        throw Self.invalid(Setting.meshNamespace, text, "expected a Kubernetes namespace: letters, digits, '-' and '.'")
      }
      meshNamespace = text
    }
    if let text = value(Setting.meshAddress) {
      guard MeshAddress(template: text, namespace: meshNamespace).resolve("function") != nil else {
        throw Self.invalid(
          Setting.meshAddress, text, "expected host:port with {function} and {namespace}, such as {function}.{namespace}:50052")
      }
      meshAddressTemplate = text
    }
  }

  /// The largest `MAX_MESSAGE_BYTES` accepted: 1 GiB.
  public static let maximumMessageBytes = 1 << 30

  /// The longest `BUSY_POLL`: longer would keep a CPU busy for nothing after a burst of calls.
  public static let maximumBusyPoll = Duration.milliseconds(10)

  /// The environment variables the watcher reads.
  public enum Setting {
    /// The bind address.
    public static let host = "WATCHER_HOST"
    /// The gateway port (OpenFx Python's name).
    public static let port = "WATCHER_PORT"
    /// The gateway port (OpenFx Go's name); `WATCHER_PORT` wins when both are set.
    public static let goPort = "PORT"
    /// The mesh port.
    public static let meshPort = "MESH_PORT"
    /// The handler to serve.
    public static let handlerName = "HANDLER_NAME"
    /// The handler library to load.
    public static let handlerFile = "HANDLER_FILE"
    /// The health lock file's path.
    public static let lockFile = "LOCK_FILE"
    /// The log level.
    public static let logLevel = "LOG_LEVEL"
    /// The drain bound on shutdown.
    public static let drainTimeout = "DRAIN_TIMEOUT"
    /// The default bound on one call.
    public static let execTimeout = "EXEC_TIMEOUT"
    /// The in-flight limit.
    public static let maxInFlight = "MAX_INFLIGHT"
    /// The message size limit.
    public static let maxMessageBytes = "MAX_MESSAGE_BYTES"
    /// The function's name.
    public static let functionName = "FUNCTION_NAME"
    /// The Prometheus metrics port.
    public static let metricsPort = "METRICS_PORT"
    /// The namespace of other functions, for mesh calls.
    public static let meshNamespace = "MESH_NAMESPACE"
    /// The address template of other functions' mesh ports.
    public static let meshAddress = "MESH_ADDRESS"
    /// How long an event loop polls after writing before it sleeps.
    public static let busyPoll = "BUSY_POLL"
  }

  private static func parseDuration(_ text: String, name: String) throws(WatcherError) -> Duration {
    guard let duration = GoDuration.parse(text) else {
      throw invalid(name, text, "expected a duration such as 10s, 1m30s, 500ms or 10 (seconds)")
    }
    return duration
  }

  private static func parsePort(_ text: String, name: String) throws(WatcherError) -> Int {
    guard let port = SettingsEnvironment.port(text) else {
      throw invalid(name, text, "expected a port number from 0 to 65535 (0 picks a free port)")
    }
    return port
  }

  private static func invalid(_ name: String, _ value: String, _ expectation: String) -> WatcherError {
    WatcherError(.invalidConfiguration, "invalid \(name) \"\(value)\": \(expectation)")
  }

  private static func isNumericAddress(_ text: String) -> Bool {
    var buffer = [UInt8](repeating: 0, count: 16)
    return inet_pton(AF_INET, text, &buffer) == 1 || inet_pton(AF_INET6, text, &buffer) == 1
  }
}
