import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// One listening port serving the invocation pipeline.
///
/// The watcher runs one endpoint per port and knows them only through this protocol, so a
/// faster transport can replace grpc-swift without touching the pipeline or the lifecycle.
protocol Endpoint: Sendable {
  /// A name for logs: `"gateway"` or `"mesh"`.
  var name: String { get }
  /// The address it is asked to bind, for messages: `"0.0.0.0:50051"`.
  var requestedAddress: String { get }
  /// Serves until shut down; throws when the port cannot be bound (before ``boundAddress()``
  /// throws) or the transport fails.
  func serve() async throws
  /// The bound address, once the port accepts connections; throws if binding failed.
  func boundAddress() async throws -> String
  /// Stops accepting new calls; ``serve()`` returns once the calls in flight have finished.
  func beginGracefulShutdown()
}

/// An ``Endpoint`` made of a grpc-swift server on SwiftNIO's HTTP/2 transport.
struct GRPCEndpoint: Endpoint {
  let name: String
  let requestedAddress: String
  private let server: GRPCServer<HTTP2ServerTransport.Posix>

  /// How far past `MAX_MESSAGE_BYTES` a request may go and still be read, so the pipeline can
  /// refuse it with RESOURCE_EXHAUSTED and a clear message.
  ///
  /// grpc-swift-nio-transport 2.9.2 answers a message over its own limit with RST_STREAM, which
  /// clients report as CANCELLED; reading up to four times the limit (plus room for `Info`)
  /// keeps that for requests far too large to be honest mistakes.
  static func transportLimit(forMaxMessageBytes limit: Int) -> Int {
    let (scaled, overflow) = limit.multipliedReportingOverflow(by: 4)
    return overflow ? Int.max : scaled.addingReportingOverflow(64 * 1024).partialValue
  }

  /// Creates an endpoint serving `services` on `host:port` in plaintext.
  init(name: String, host: String, port: Int, maxMessageBytes: Int, services: [any RegistrableRPCService]) {
    self.name = name
    self.requestedAddress = MeshAddress.text(host: host, port: port)
    let address: GRPCNIOTransportCore.SocketAddress =
      host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
    var config = HTTP2ServerTransport.Posix.Config.defaults
    config.rpc.maxRequestPayloadSize = Self.transportLimit(forMaxMessageBytes: maxMessageBytes)
    let transport = HTTP2ServerTransport.Posix(address: address, transportSecurity: .plaintext, config: config)
    self.server = GRPCServer(transport: transport, services: services)
  }

  /// Serves; a transport failure is rethrown as its underlying cause (such as a bind error).
  func serve() async throws {
    do {
      try await server.serve()
    } catch let error as RuntimeError {
      var cause: any Error = error
      while let runtime = cause as? RuntimeError, let inner = runtime.cause { cause = inner }
      throw cause
    }
  }

  func boundAddress() async throws -> String {
    let address = try await server.transport.listeningAddress
    if let ipv4 = address.ipv4 { return "\(ipv4.host):\(ipv4.port)" }
    if let ipv6 = address.ipv6 { return "[\(ipv6.host)]:\(ipv6.port)" }
    return "\(address)"
  }

  func beginGracefulShutdown() {
    server.beginGracefulShutdown()
  }
}
