#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import Logging
import ServiceLifecycle
import Synchronization
import Watcher

/// A real watcher serving a handler on free loopback ports, with a gRPC client connected to it:
/// what ``withRunningWatcher(_:configuration:functionName:logger:_:)`` hands its body.
public struct RunningWatcher: Sendable {
  /// The gateway port the watcher bound.
  public let port: Int
  /// The mesh port the watcher bound.
  public let meshPort: Int
  /// The health lock file, present while the watcher is ready.
  public let lockFilePath: String
  /// A grpc-swift client of the gateway port, for any method: wrap it in
  /// `Pb_FxWatcher.Client`, `Pb_FxGateway.Client` or `Grpc_Health_V1_Health.Client`.
  public let client: GRPCClient<HTTP2ClientTransport.Posix>

  /// Calls `pb.FxWatcher/Call` with `text`; a failure is thrown as the gRPC status, converted
  /// to a ``HandlerKit/HandlerError`` of the same code.
  public func call(_ text: String, info: Info = Info(), timeout: Duration? = nil) async throws(HandlerError) -> String {
    try await converting { try await watcher.call(request(Data(text.utf8), info), options: options(timeout)).output }
  }

  /// Calls `pb.FxWatcher/CallBytes` with `bytes`.
  public func call(bytes: Data, info: Info = Info(), timeout: Duration? = nil) async throws(HandlerError) -> Data {
    try await converting { try await watcher.callBytes(request(bytes, info), options: options(timeout)).output }
  }

  /// Calls `pb.FxWatcher/CallStream` and returns every message, in order.
  public func stream(_ text: String, info: Info = Info(), timeout: Duration? = nil) async throws(HandlerError) -> [Data] {
    try await converting {
      try await watcher.callStream(request(Data(text.utf8), info), options: options(timeout)) { response in
        var messages: [Data] = []
        for try await message in response.messages { messages.append(message.output) }
        return messages
      }
    }
  }

  private var watcher: Pb_FxWatcher.Client<HTTP2ClientTransport.Posix> { Pb_FxWatcher.Client(wrapping: client) }

  private func request(_ input: Data, _ info: Info) -> Pb_Request {
    var request = Pb_Request()
    request.input = input
    request.info.functionName = info.functionName
    request.info.timeout = info.timeout
    request.info.runtime = info.runtime
    request.info.limits.memory = info.limits.memory
    request.info.limits.cpu = info.limits.cpu
    request.info.limits.gpu = info.limits.gpu
    request.info.trigger.name = info.trigger.name
    request.info.trigger.topic = info.trigger.topic
    request.info.trigger.time = info.trigger.time
    return request
  }

  private func options(_ timeout: Duration?) -> CallOptions {
    var options = CallOptions.defaults
    options.timeout = timeout
    return options
  }

  private func converting<Value>(_ body: () async throws -> Value) async throws(HandlerError) -> Value {
    do {
      return try await body()
    } catch let error as RPCError {
      throw HandlerError(HandlerError.Code(grpcStatusCode: error.code.rawValue), error.message)
    } catch {
      throw HandlerError(.unknown, "\(error)")
    }
  }
}

/// Starts a real watcher for `handler` on free loopback ports (gRPC over TCP, exactly as in
/// production), runs `body` with a ``RunningWatcher`` connected to it, then shuts the watcher
/// down gracefully and returns `body`'s result.
///
/// ```swift
/// @Test func greetsOverGRPC() async throws {
///   try await withRunningWatcher(Greeter()) { watcher in
///     #expect(try await watcher.call("Ada") == "Hello, Ada")
///   }
/// }
/// ```
///
/// `configuration`'s host, ports and lock file are replaced by loopback, free ports and a
/// temporary file; its limits and timeouts are kept.
public func withRunningWatcher<Result: Sendable>(
  _ handler: any Handler,
  configuration: WatcherConfiguration = .defaults,
  functionName: String = "function",
  logger: Logger = Logger(label: "watcher-testing", factory: { _ in SwiftLogNoOpLogHandler() }),
  _ body: (RunningWatcher) async throws -> Result
) async throws -> Result {
  var configuration = configuration
  configuration.host = "127.0.0.1"
  configuration.port = 0
  configuration.meshPort = 0
  configuration.metricsPort = configuration.metricsPort.map { _ in 0 }
  configuration.lockFilePath = FileManager.default.temporaryDirectory
    .appendingPathComponent("fxwatcher-test-\(UUID().uuidString).lock").path
  let (ready, readyInput) = AsyncStream.makeStream(of: [String: String].self)
  let service = WatcherService(
    configuration: configuration, handler: handler, functionName: functionName, logger: logger,
    onReady: { addresses in
      readyInput.yield(addresses)
      readyInput.finish()
    })
  let group = ServiceGroup(services: [service], logger: logger)
  return try await withThrowingTaskGroup(of: Void.self) { tasks in
    tasks.addTask {
      try await group.run()
      readyInput.finish()
    }
    var readiness = ready.makeAsyncIterator()
    guard let addresses = await readiness.next(), let port = portNumber(of: addresses["gateway"]),
      let meshPort = portNumber(of: addresses["mesh"])
    else {
      // The watcher stopped before it was ready: its error is the reason.
      try await tasks.next()
      throw HandlerError(.unavailable, "the watcher stopped before it was ready")
    }
    let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    let client = GRPCClient(transport: transport)
    tasks.addTask { try await client.runConnections() }
    let watcher = RunningWatcher(
      port: port, meshPort: meshPort, lockFilePath: configuration.lockFilePath, client: client)
    do {
      let result = try await body(watcher)
      client.beginGracefulShutdown()
      await group.triggerGracefulShutdown()
      try await tasks.waitForAll()
      return result
    } catch {
      client.beginGracefulShutdown()
      await group.triggerGracefulShutdown()
      try? await tasks.waitForAll()
      throw error
    }
  }
}

/// The port of `host:port` or `[v6]:port`.
private func portNumber(of address: String?) -> Int? {
  guard let address, let colon = address.lastIndex(of: ":") else { return nil }
  return Int(address[address.index(after: colon)...])
}
