/// One listening port serving the invocation pipeline.
///
/// The watcher runs one endpoint per port and knows them only through this protocol (the
/// gRPC ports are ``HTTP2Endpoint``s, the metrics port a ``MetricsEndpoint``), so a transport
/// can change without touching the pipeline or the lifecycle.
protocol Endpoint: Sendable {
  /// A name for logs: `"gateway"` or `"mesh"`.
  var name: String { get }
  /// The address it is asked to bind, for messages: `"0.0.0.0:50051"`.
  var requestedAddress: String { get }
  /// Starts binding the port without waiting for it; ``serve()`` then serves on it. Optional:
  /// ``serve()`` binds the port itself.
  func startListening()
  /// Serves until shut down; throws when the port cannot be bound (before ``boundAddress()``
  /// throws) or the transport fails.
  func serve() async throws
  /// The bound address, once the port accepts connections; throws if binding failed.
  func boundAddress() async throws -> String
  /// Stops accepting new calls; ``serve()`` returns once the calls in flight have finished.
  func beginGracefulShutdown()
  /// Once serving, does what the first caller's call would otherwise wait for that only a
  /// process's first call does; a no-op unless an endpoint has such work.
  func warmUp() async
}

extension Endpoint {
  func startListening() {}
  func warmUp() async {}
}
