import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import Synchronization

/// One plaintext HTTP/2 connection to another watcher's mesh port, carrying unary gRPC calls,
/// each on a stream of its own (``UnaryCallHandler``).
///
/// It takes no new calls once the callee says it is going away (GOAWAY) or the connection has
/// closed; the calls in flight finish. ``closeWhenIdle()`` closes it after its last call, and it
/// closes by itself once it has carried no call for its idle timeout.
final class MeshConnection: Sendable {
  /// The flow-control window of the connection and of each stream, in bytes: a reply of a few
  /// MiB arrives without waiting for window updates.
  static let windowSize = 4 * 1024 * 1024

  private let channel: any Channel
  private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
  private let authority: String
  private let usage: Usage
  private let idleTimeout: Duration

  private init(
    channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer, authority: String, usage: Usage,
    idleTimeout: Duration
  ) {
    self.channel = channel
    self.multiplexer = multiplexer
    self.authority = authority
    self.usage = usage
    self.idleTimeout = idleTimeout
  }

  /// Connects to `host:port`, giving up after `timeout`; calls name `authority` as their
  /// `:authority`. The connection closes once it has carried no call for `idleTimeout`.
  static func connect(
    host: String, port: Int, authority: String, group: any EventLoopGroup, timeout: Duration,
    idleTimeout: Duration
  ) async throws
    -> MeshConnection
  {
    let usage = Usage()
    let (channel, multiplexer) = try await ClientBootstrap(group: group)
      .connectTimeout(.nanoseconds(timeout.nanoseconds))
      .channelOption(.tcpOption(.tcp_nodelay), value: 1)
      .connect(host: host, port: port) { channel in
        channel.eventLoop.makeCompletedFuture {
          var connection = NIOHTTP2Handler.ConnectionConfiguration()
          connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
            HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
            HTTP2Setting(parameter: .initialWindowSize, value: windowSize),
          ]
          connection.targetWindowSize = windowSize
          var streams = NIOHTTP2Handler.StreamConfiguration()
          streams.targetWindowSize = windowSize
          let sync = channel.pipeline.syncOperations
          // A callee opens no streams of its own: any it tries is closed.
          let multiplexer = try sync.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: connection, streamConfiguration: streams
          ) { stream in stream.close() }
          try sync.addHandler(GoAwayObserver(usage: usage))
          return (channel, multiplexer)
        }
      }
    return MeshConnection(
      channel: channel, multiplexer: multiplexer, authority: authority, usage: usage, idleTimeout: idleTimeout)
  }

  /// Whether new calls may go on this connection.
  var acceptsCalls: Bool {
    channel.isActive && usage.acceptsCalls
  }

  /// Calls `path` with the encoded request `message` and returns the reply's encoded message.
  /// Throws a ``MeshCallFailure``: the callee's status, or the client-side failure's.
  func call(path: String, message: some Collection<UInt8>, timeout: Duration, maxReplyBytes: Int) async throws
    -> ByteBuffer
  {
    guard usage.begin() else {
      throw MeshCallFailure.unavailable("the connection is closing", wasNotProcessed: true)
    }
    defer { carryOut(usage.end(idleTimeout: idleTimeout)) }
    let headers: HPACKHeaders = [
      ":method": "POST", ":scheme": "http", ":path": path, ":authority": authority,
      "content-type": "application/grpc", "te": "trailers", "grpc-timeout": GRPCTimeout.header(for: timeout),
      "user-agent": "fxwatcher-mesh",
    ]
    let framed = GRPCFrame.message(message, allocator: channel.allocator)
    let loop = channel.eventLoop
    let outcome = UnaryCallOutcome(eventLoop: loop)
    multiplexer.createStreamChannel { [usage] stream in
      stream.eventLoop.makeCompletedFuture {
        try stream.pipeline.syncOperations.addHandler(
          UnaryCallHandler(
            headers: headers, message: framed, timeout: timeout, maxReplyBytes: maxReplyBytes, outcome: outcome,
            connection: usage))
      }
    }.whenFailure { error in
      outcome.settle(.failure(.unavailable("no stream could be opened: \(error)", wasNotProcessed: true)))
    }
    return try await withTaskCancellationHandler {
      try await outcome.promise.futureResult.get()
    } onCancel: {
      loop.execute {
        outcome.settle(.failure(MeshCallFailure(code: .cancelled, message: "the caller cancelled the call")))
      }
    }
  }

  /// Closes the connection once no call is on it (at once if none is); it takes no new calls.
  func closeWhenIdle() {
    if usage.closeWhenIdle() { channel.close(promise: nil) }
  }

  /// Does what the usage asks after a call's end or an idle check: closes the connection, or
  /// checks again after `delay` whether it is still idle (at most one check is pending per
  /// connection).
  private func carryOut(_ next: Usage.Next) {
    switch next {
    case .closeNow:
      channel.close(promise: nil)
    case .checkIdle(let delay):
      channel.eventLoop.scheduleTask(in: .nanoseconds(delay.nanoseconds)) { [self] in
        carryOut(usage.idleCheck(idleTimeout: idleTimeout))
      }
    case .nothing:
      break
    }
  }

  /// The calls on a connection and whether it takes more.
  final class Usage: Sendable {
    /// What the connection is to do after a call's end or an idle check.
    enum Next: Equatable {
      case nothing
      case closeNow
      /// Check whether it is still idle after this long.
      case checkIdle(Duration)
    }

    private struct State {
      var openCalls = 0
      /// Since when no call has been open.
      var idleSince = ContinuousClock.now
      var idleCheckPending = false
      /// The last stream the callee said it took, once it said it is going away.
      var goAwayLastStreamID: HTTP2StreamID?
      var closingWhenIdle = false
    }

    private let state = Mutex(State())

    var acceptsCalls: Bool {
      state.withLock { $0.goAwayLastStreamID == nil && !$0.closingWhenIdle }
    }

    /// Whether the callee's GOAWAY left stream `id` out: it was not taken.
    func wasLeftOut(_ id: HTTP2StreamID) -> Bool {
      state.withLock { state in state.goAwayLastStreamID.map { id > $0 } ?? false }
    }

    /// Counts a call in, unless the connection is closing.
    func begin() -> Bool {
      state.withLock { state in
        guard !state.closingWhenIdle else { return false }
        state.openCalls += 1
        return true
      }
    }

    /// Counts a call out.
    func end(idleTimeout: Duration) -> Next {
      state.withLock { state in
        state.openCalls -= 1
        guard state.openCalls == 0 else { return .nothing }
        if state.closingWhenIdle { return .closeNow }
        state.idleSince = .now
        guard !state.idleCheckPending else { return .nothing }
        state.idleCheckPending = true
        return .checkIdle(idleTimeout)
      }
    }

    /// An idle check is due: close now if no call was open for `idleTimeout` (no more are then
    /// taken), else when to look again, if no call is open.
    func idleCheck(idleTimeout: Duration) -> Next {
      state.withLock { state in
        state.idleCheckPending = false
        guard state.openCalls == 0, !state.closingWhenIdle else { return .nothing }
        let idle = ContinuousClock.now - state.idleSince
        guard idle < idleTimeout else {
          state.closingWhenIdle = true
          return .closeNow
        }
        state.idleCheckPending = true
        return .checkIdle(idleTimeout - idle)
      }
    }

    /// True if the connection is to close now.
    func closeWhenIdle() -> Bool {
      state.withLock { state in
        state.closingWhenIdle = true
        return state.openCalls == 0
      }
    }

    func goAway(lastStreamID: HTTP2StreamID) {
      state.withLock { state in state.goAwayLastStreamID = min(lastStreamID, state.goAwayLastStreamID ?? .maxID) }
    }
  }

  /// Sees the callee's GOAWAY (NIOHTTP2 passes the connection's own frames down the pipeline,
  /// before it closes the streams the GOAWAY left out) and stops new calls from being sent on
  /// the connection.
  private final class GoAwayObserver: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    private let usage: Usage

    init(usage: Usage) {
      self.usage = usage
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      if case .goAway(let lastStreamID, _, _) = unwrapInboundIn(data).payload {
        usage.goAway(lastStreamID: lastStreamID)
      }
    }
  }
}
