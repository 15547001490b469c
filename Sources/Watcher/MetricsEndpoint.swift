import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Serves `GET /metrics` (Prometheus text format) over HTTP/1.1 on its own port; any other
/// path is 404, any other method 405.
final class MetricsEndpoint: Endpoint {
  let name = "metrics"
  let requestedAddress: String
  private let host: String
  private let port: Int
  private let metrics: CallMetrics
  private let channel = Mutex<(any Channel)?>(nil)
  private let bound = Mutex<(result: Result<String, any Error>?, waiters: [CheckedContinuation<String, any Error>])>((nil, []))

  init(host: String, port: Int, metrics: CallMetrics) {
    self.host = host
    self.port = port
    self.metrics = metrics
    self.requestedAddress = MeshAddress.text(host: host, port: port)
  }

  func serve() async throws {
    let metrics = self.metrics
    let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.backlog, value: 64)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline()
          try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(metrics: metrics))
        }
      }
    let server: any Channel
    do {
      server = try await bootstrap.bind(host: host, port: port).get()
    } catch {
      settle(.failure(error))
      throw error
    }
    channel.withLock { $0 = server }
    let address = server.localAddress.map { "\($0.ipAddress ?? host):\($0.port ?? port)" } ?? requestedAddress
    settle(.success(address))
    try await withTaskCancellationHandler {
      try await server.closeFuture.get()
    } onCancel: {
      server.close(promise: nil)
    }
  }

  func boundAddress() async throws -> String {
    try await withCheckedThrowingContinuation { continuation in
      let result = bound.withLock { state -> Result<String, any Error>? in
        if state.result == nil { state.waiters.append(continuation) }
        return state.result
      }
      if let result { continuation.resume(with: result) }
    }
  }

  func beginGracefulShutdown() {
    channel.withLock { $0 }?.close(promise: nil)
  }

  private func settle(_ result: Result<String, any Error>) {
    let waiters = bound.withLock { state in
      state.result = result
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume(with: result) }
  }
}

/// Answers one HTTP/1.1 request at a time with the metrics exposition.
private final class MetricsHTTPHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let metrics: CallMetrics
  private var head: HTTPRequestHead?

  init(metrics: CallMetrics) {
    self.metrics = metrics
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      self.head = head
    case .body:
      break
    case .end:
      guard let head else { return }
      self.head = nil
      let (status, contentType, body): (HTTPResponseStatus, String, [UInt8]) =
        switch (head.method, head.uri.split(separator: "?").first ?? "") {
        case (.GET, "/metrics"): (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
        case (_, "/metrics"): (.methodNotAllowed, "text/plain", Array("use GET\n".utf8))
        default: (.notFound, "text/plain", Array("metrics are at /metrics\n".utf8))
        }
      var headers = HTTPHeaders([("content-type", contentType), ("content-length", "\(body.count)")])
      if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
      context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
      context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
      let keepAlive = head.isKeepAlive
      let channel = context.channel
      context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
        if !keepAlive { channel.close(promise: nil) }
      }
    }
  }
}
