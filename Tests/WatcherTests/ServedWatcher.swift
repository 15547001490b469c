import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import Testing

@testable import Watcher

/// Serves `handler` with the watcher's gRPC methods on the real transport, an ``HTTP2Endpoint``
/// on a free loopback port, and gives `body` the port; shuts the endpoint down afterwards.
/// `execTimeout` and `gate` are EXEC_TIMEOUT and the MAX_INFLIGHT gate.
func withServedHandler(
  _ handler: any Handler,
  functionName: String = "fn",
  health: HealthStatus = HealthStatus(),
  execTimeout: Duration? = nil,
  gate: InvocationGate = InvocationGate(limit: 0),
  _ body: @Sendable (Int) async throws -> Void
) async throws {
  try await withServedEndpoint(
    handler, functionName: functionName, health: health, execTimeout: execTimeout, gate: gate
  ) { _, port in try await body(port) }
}

/// As ``withServedHandler(_:functionName:health:execTimeout:gate:_:)``, giving `body` the
/// endpoint too; `port` 0 is a free one.
func withServedEndpoint(
  _ handler: any Handler,
  functionName: String = "fn",
  health: HealthStatus = HealthStatus(),
  execTimeout: Duration? = nil,
  gate: InvocationGate = InvocationGate(limit: 0),
  port: Int = 0,
  _ body: @Sendable (HTTP2Endpoint, Int) async throws -> Void
) async throws {
  let invoker = Invoker(handler: handler, functionName: functionName, logger: .quiet, execTimeout: execTimeout, gate: gate)
  let endpoint = HTTP2Endpoint(
    name: "test", host: "127.0.0.1", port: port, maxMessageBytes: 4 * 1024 * 1024,
    methods: GRPCMethod.watcherMethods(invoker: invoker, health: health))
  try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await endpoint.serve() }
    let address = try await endpoint.boundAddress()
    let port = try #require(MeshAddress.split(address)?.port)
    do {
      try await body(endpoint, port)
    } catch {
      group.cancelAll()
      throw error
    }
    endpoint.beginGracefulShutdown()
    try await group.waitForAll()
  }
}

/// As ``withServedHandler(_:functionName:health:execTimeout:gate:_:)``, with a grpc-swift client
/// connected to it.
func withServedClient(
  _ handler: any Handler,
  functionName: String = "fn",
  health: HealthStatus = HealthStatus(),
  execTimeout: Duration? = nil,
  gate: InvocationGate = InvocationGate(limit: 0),
  _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Void
) async throws {
  try await withServedHandler(handler, functionName: functionName, health: health, execTimeout: execTimeout, gate: gate) {
    port in
    let transport = try HTTP2ClientTransport.Posix(
      target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    try await withGRPCClient(transport: transport) { client in try await body(client) }
  }
}
