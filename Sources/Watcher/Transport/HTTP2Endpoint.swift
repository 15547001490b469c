import NIOCore
import NIOPosix
import Synchronization

/// An ``Endpoint`` serving gRPC on HTTP/2 of its own, on SwiftNIO's sockets: one
/// ``HTTP2ServerConnection`` per connection, each call's task on the event loop of its connection.
///
/// Graceful shutdown closes the listening socket, then tells every connection to quiesce
/// (GOAWAY, streams in flight finish); ``serve()`` returns once every connection has closed.
/// Cancelling ``serve()`` closes every connection at once, which cancels the calls on them.
final class HTTP2Endpoint: Endpoint {
  let name: String
  let requestedAddress: String
  private let host: String
  private let port: Int
  private let maxMessageBytes: Int
  private let methods: [String: GRPCMethod]
  private let group: MultiThreadedEventLoopGroup
  private let bound: EventLoopPromise<any Channel>
  /// The port bound before the event loops existed, if it was (``ListeningSocket``).
  private let prebound: ListeningSocket?
  /// Whether ``startListening()`` has begun binding the port.
  private let listening = Atomic(false)
  private let connections = ConnectionSet()
  /// How long an event loop polls after writing to a connection (``BusyPoll``); `nil`: not at all.
  private let busyPoll: TimeAmount?
  /// How many calls' stream objects exist, on every connection: ended ones must be let go.
  let liveStreams = LiveCount()
  /// How many connections are open.
  var openConnections: Int { connections.all.count }

  /// The largest number of calls one connection may have open at once (HTTP/2
  /// `SETTINGS_MAX_CONCURRENT_STREAMS`); `MAX_INFLIGHT` bounds the calls of all connections.
  static let maximumConcurrentStreams = 4096
  /// The flow-control window of each stream and of each connection, in bytes: large enough for
  /// a 1 MiB message to arrive without waiting for a window update.
  static let windowSize = 4 * 1024 * 1024
  /// How many connections the kernel keeps completed for the port until they are accepted.
  static let backlog: Int32 = 1024

  /// Creates an endpoint serving `methods` on `host:port` in plaintext, each event loop polling
  /// for `busyPoll` after it wrote to a connection (``BusyPoll``; zero: not at all). Given
  /// `prebound`, a socket already listening on that address, it serves that one.
  init(
    name: String, host: String, port: Int, maxMessageBytes: Int, methods: [String: GRPCMethod],
    busyPoll: Duration = WatcherConfiguration.defaults.busyPoll, prebound: ListeningSocket? = nil
  ) {
    self.name = name
    self.requestedAddress = MeshAddress.text(host: host, port: port)
    self.host = host
    self.port = port
    self.maxMessageBytes = maxMessageBytes
    self.methods = methods
    self.group = MultiThreadedEventLoopGroup.singleton
    self.busyPoll = busyPoll > .zero ? .nanoseconds(Int64(busyPoll.nanoseconds)) : nil
    self.prebound = prebound
    self.bound = group.any().makePromise(of: (any Channel).self)
  }

  /// Starts binding the port on the event loops and returns at once; ``serve()`` then serves
  /// on it (and binds it itself when this was not called). Calls after the first do nothing.
  func startListening() {
    guard !listening.exchange(true, ordering: .relaxed) else { return }
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: Self.backlog)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
      .childChannelOption(.maxMessagesPerRead, value: 16)
      .childChannelInitializer { [connections, setUpConnection] channel in
        channel.eventLoop.makeCompletedFuture {
          try setUpConnection(channel)
          connections.add(channel)
        }
      }
    if let descriptor = prebound?.take() {
      bootstrap.withBoundSocket(descriptor).map { listener in
        ListeningSocket.setBacklog(Self.backlog, of: descriptor)
        return listener
      }.cascade(to: bound)
      return
    }
    // An IP address is bound as it is: bind(host:) would resolve it with getaddrinfo, which
    // asks the network interfaces and the name service cache first.
    if let address = try? SocketAddress(ipAddress: host, port: port) {
      bootstrap.bind(to: address).cascade(to: bound)
    } else {
      bootstrap.bind(host: host, port: port).cascade(to: bound)
    }
  }

  func serve() async throws {
    startListening()
    let listener = try await bound.futureResult.get()
    try await withTaskCancellationHandler {
      try await listener.closeFuture.get()
      await connections.waitUntilAllClosed()
    } onCancel: {
      listener.close(promise: nil)
      connections.closeAll()
    }
  }

  func boundAddress() async throws -> String {
    let listener = try await bound.futureResult.get()
    guard let address = listener.localAddress, let port = address.port else { return requestedAddress }
    return MeshAddress.text(host: address.ipAddress ?? host, port: port)
  }

  func beginGracefulShutdown() {
    bound.futureResult.whenSuccess { listener in
      listener.close(promise: nil)
    }
    connections.quiesceAll()
  }

  /// Makes one call to itself, a health check (no handler runs) over a pair of Unix sockets
  /// (``WarmUpCall``): the run-time set-up a process does once for its first call on this path
  /// (type metadata, protocol conformance lookups in NIO, NIOHPACK and here, the pipeline's
  /// first allocations) is then done before the first caller's call instead of during it. It
  /// needs no bound port.
  func warmUp() async {
    _ = await makeWarmUpCall()
  }

  /// Makes the call ``warmUp()`` makes; returns whether it was answered within `timeout`.
  func makeWarmUpCall(timeout: TimeAmount = .seconds(2)) async -> Bool {
    await WarmUpCall.run(servedBy: setUpConnection, group: group, timeout: timeout)
  }

  /// Sets up one connection's pipeline with this endpoint's settings (``configure``): an accepted
  /// connection's, and the warm-up call's served end.
  private var setUpConnection: @Sendable (any Channel) throws -> Void {
    { [methods, maxMessageBytes, liveStreams, busyPoll] channel in
      try Self.configure(
        channel, methods: methods, maxMessageBytes: maxMessageBytes, liveStreams: liveStreams, busyPoll: busyPoll)
    }
  }

  /// Shuts the connections open now down gracefully, as ``beginGracefulShutdown()`` does, but
  /// goes on accepting new ones.
  func quiesceOpenConnections() {
    connections.quiesceOpen()
  }

  /// Sets up one accepted connection: HTTP/2 and its calls (whose handler also shuts it down
  /// gracefully when told to quiesce).
  private static func configure(
    _ channel: any Channel, methods: [String: GRPCMethod], maxMessageBytes: Int, liveStreams: LiveCount,
    busyPoll: TimeAmount?
  ) throws {
    try channel.pipeline.syncOperations.addHandler(
      HTTP2ServerConnection(
        methods: methods, maxMessageBytes: maxMessageBytes, windowSize: windowSize,
        maxConcurrentStreams: maximumConcurrentStreams, eventLoop: channel.eventLoop, liveStreams: liveStreams,
        busyPoll: busyPoll))
  }
}

/// How many objects of a kind exist, counted by their initializers and deinitializers.
final class LiveCount: Sendable {
  private let count = Atomic(0)

  /// The number now.
  var value: Int { count.load(ordering: .relaxed) }

  func increment() { count.add(1, ordering: .relaxed) }
  func decrement() { count.subtract(1, ordering: .relaxed) }
}

/// The open connections of an endpoint, to quiesce or close them all and to wait for them.
private final class ConnectionSet: Sendable {
  private struct State {
    var channels: [ObjectIdentifier: any Channel] = [:]
    var quiescing = false
    var waiters: [CheckedContinuation<Void, Never>] = []
  }

  private let state = Mutex(State())

  /// Tracks `channel` until it closes; one accepted while quiescing is told to quiesce at once.
  func add(_ channel: any Channel) {
    let id = ObjectIdentifier(channel)
    let quiescing = state.withLock { state in
      state.channels[id] = channel
      return state.quiescing
    }
    channel.closeFuture.whenComplete { [self] _ in remove(id) }
    if quiescing { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
  }

  /// The connections open now.
  var all: [any Channel] {
    state.withLock { Array($0.channels.values) }
  }

  /// Tells the connections open now to quiesce; later ones are not.
  func quiesceOpen() {
    for channel in all {
      channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
  }

  /// Tells the connections open now, and every one accepted from now on, to quiesce.
  func quiesceAll() {
    state.withLock { $0.quiescing = true }
    quiesceOpen()
  }

  func closeAll() {
    for channel in all { channel.close(promise: nil) }
  }

  /// Returns once no connection is open.
  func waitUntilAllClosed() async {
    await withCheckedContinuation { continuation in
      let ready = state.withLock { state in
        if state.channels.isEmpty { return true }
        state.waiters.append(continuation)
        return false
      }
      if ready { continuation.resume() }
    }
  }

  private func remove(_ id: ObjectIdentifier) {
    let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
      state.channels[id] = nil
      guard state.channels.isEmpty else { return [] }
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume() }
  }
}
