import HandlerKit
import Logging
import ServiceLifecycle
import Synchronization

/// The watcher: serves one handler on the gateway and mesh ports (and the metrics port, when
/// set) and keeps the health lock and the health state.
///
/// Run it in a `ServiceGroup` with SIGTERM/SIGINT as graceful-shutdown signals (``FxWatcher``
/// does). Start-up: stale lock removed, every port bound, then the lock written and health
/// SERVING. Graceful shutdown: the lock removed first, health NOT_SERVING, new calls refused
/// with UNAVAILABLE, every port stops accepting, calls in flight get up to
/// ``WatcherConfiguration/drainTimeout`` to finish and are cancelled after it; then `run()`
/// returns normally.
public struct WatcherService: Service, CustomStringConvertible {
  private let configuration: WatcherConfiguration
  private let endpoints: [any Endpoint]
  private let lockFile: LockFile
  private let logger: Logger
  private let gate: InvocationGate
  private let health: HealthStatus
  private let mesh: GRPCMeshClient?
  private let onReady: (@Sendable ([String: String]) -> Void)?
  /// The warm-up made while the ports are being bound (by ``startListening()`` or ``run()``).
  private let firstWarmUp = FirstWarmUp()

  /// Creates a watcher for `handler` with its HTTP/2 endpoints on both ports (and the metrics
  /// endpoint if one is set).
  ///
  /// `functionName` is the function's name when ``WatcherConfiguration/functionName`` is unset.
  public init(
    configuration: WatcherConfiguration,
    handler: any Handler,
    functionName: String,
    logger: Logger
  ) {
    self.init(configuration: configuration, handler: handler, functionName: functionName, logger: logger, onReady: nil)
  }

  /// As the public initializer; `onReady` is given the bound address of each endpoint
  /// (`gateway`, `mesh`, `metrics`) once the lock is written (the test kit's way to learn ports).
  package init(
    configuration: WatcherConfiguration,
    handler: any Handler,
    functionName: String,
    logger: Logger,
    onReady: (@Sendable ([String: String]) -> Void)?
  ) {
    self.init(
      configuration: configuration, handler: handler, functionName: functionName, logger: logger, onReady: onReady,
      listeningSockets: ListeningSockets())
  }

  /// As the package initializer, serving the ports in `listeningSockets` (bound before, see
  /// ``ListeningSockets``) instead of binding them.
  init(
    configuration: WatcherConfiguration,
    handler: any Handler,
    functionName: String,
    logger: Logger,
    onReady: (@Sendable ([String: String]) -> Void)?,
    listeningSockets: ListeningSockets
  ) {
    let gate = InvocationGate(limit: configuration.maxInFlight)
    let health = HealthStatus()
    let metrics = configuration.metricsPort.map { _ in CallMetrics(callsInFlight: { gate.callsInFlight }) }
    let mesh = GRPCMeshClient(
      address: MeshAddress(template: configuration.meshAddressTemplate, namespace: configuration.meshNamespace))
    let invoker = Invoker(
      handler: handler,
      functionName: configuration.functionName ?? functionName,
      logger: logger,
      execTimeout: configuration.execTimeout,
      maxMessageBytes: configuration.maxMessageBytes,
      gate: gate,
      mesh: mesh,
      metrics: metrics
    )
    let methods = GRPCMethod.watcherMethods(invoker: invoker, health: health)
    let endpoint = { (name: String, port: Int, prebound: ListeningSocket?) in
      HTTP2Endpoint(
        name: name, host: configuration.host, port: port, maxMessageBytes: configuration.maxMessageBytes,
        methods: methods, busyPoll: configuration.busyPoll, prebound: prebound)
    }
    var endpoints: [any Endpoint] = [
      endpoint("gateway", configuration.port, listeningSockets.gateway),
      endpoint("mesh", configuration.meshPort, listeningSockets.mesh),
    ]
    if let metrics, let port = configuration.metricsPort {
      endpoints.append(MetricsEndpoint(host: configuration.host, port: port, metrics: metrics))
    }
    self.init(
      configuration: configuration,
      endpoints: endpoints,
      logger: logger,
      gate: gate,
      health: health,
      mesh: mesh,
      onReady: onReady
    )
  }

  init(
    configuration: WatcherConfiguration,
    endpoints: [any Endpoint],
    logger: Logger,
    gate: InvocationGate = InvocationGate(limit: 0),
    health: HealthStatus = HealthStatus(),
    mesh: GRPCMeshClient? = nil,
    onReady: (@Sendable ([String: String]) -> Void)? = nil
  ) {
    self.configuration = configuration
    self.endpoints = endpoints
    self.lockFile = LockFile(path: configuration.lockFilePath)
    self.logger = logger
    self.gate = gate
    self.health = health
    self.mesh = mesh
    self.onReady = onReady
  }

  /// A short description for logs: the endpoints and the lock file.
  public var description: String {
    "WatcherService(endpoints: \(endpoints.map(\.name).joined(separator: ", ")), lock: \(lockFile.path))"
  }

  private enum Event: Sendable {
    case endpointStopped(String)
    case shutdownRequested
    case drainExpired
    case trimmerStopped
    case warmedUp
  }

  /// How often the idle memory trimmer looks whether a busy period has ended.
  static let memoryTrimInterval = Duration.seconds(2)
  /// How long after its warm-up the watcher gives back the start's pages (``ReadOnlySegments``),
  /// and how often it looks again while calls are running.
  static let startUpPagesReleaseDelay = Duration.milliseconds(200)

  /// Starts binding the ports and warms the call path up (a call to itself, which needs no
  /// port); returns once the warm-up is done, the ports being bound meanwhile. ``run()`` then
  /// serves on them, and reports a port that could not be bound.
  ///
  /// Optional: ``run()`` does both itself. Called before the rest of a process's start (its
  /// `ServiceGroup`'s set-up, for one), the ports accept connections and the first call finds
  /// its path warm sooner.
  public func startListening() async {
    beginListeningAndWarmUp()
    await firstWarmUp.finished
  }

  private func beginListeningAndWarmUp() {
    for endpoint in endpoints { endpoint.startListening() }
    // The gRPC endpoints share their code: warming one warms both.
    firstWarmUp.start { [endpoints] in
      await endpoints.first?.warmUp()
    }
  }

  /// Serves until graceful shutdown (or cancellation), then drains within the bound.
  public func run() async throws {
    // A lock left by an earlier process must not claim readiness for this one.
    try lockFile.remove()
    defer { mesh?.shutdown() }
    do {
      try await serve()
    } catch {
      // Whatever ended the watcher, the healthcheck must not report it ready.
      try? lockFile.remove()
      throw error
    }
  }

  private func serve() async throws {
    beginListeningAndWarmUp()
    try await withThrowingTaskGroup(of: Event.self) { group in
      for endpoint in endpoints {
        group.addTask {
          do {
            try await endpoint.serve()
          } catch where Task.isCancelled {
            // Cancelled after the drain bound: the calls still in flight were cut short.
          }
          return .endpointStopped(endpoint.name)
        }
      }
      var addresses: [String: String] = [:]
      for endpoint in endpoints {
        do {
          addresses[endpoint.name] = try await endpoint.boundAddress()
        } catch {
          // The serving task holds the real reason (e.g. "Address already in use").
          var cause: any Error = error
          do { _ = try await group.next() } catch let serveError { cause = serveError }
          throw WatcherError(
            .bindFailed, "cannot listen on the \(endpoint.name) port \(endpoint.requestedAddress): \(cause)")
        }
      }
      try lockFile.create()
      health.markServing()
      var metadata = addresses.mapValues { Logger.MetadataValue.string($0) }
      metadata["lock"] = "\(lockFile.path)"
      logger.info("watcher ready", metadata: metadata)
      onReady?(addresses)

      group.addTask {
        try? await gracefulShutdown()
        return .shutdownRequested
      }
      group.addTask { [gate] in
        await IdleMemoryTrimmer(gate: gate, interval: Self.memoryTrimInterval).run()
        return .trimmerStopped
      }
      // Once the start-up is over and no call runs, the code and tables only the start used are
      // given back, and a second warm-up faults back in what calls use (a call running meanwhile
      // would fault it in too).
      group.addTask { [endpoints, gate, firstWarmUp] in
        await firstWarmUp.finished
        repeat {
          do { try await Task.sleep(for: Self.startUpPagesReleaseDelay) } catch { return .warmedUp }
        } while gate.callsInFlight > 0
        ReadOnlySegments.releaseResidentPages()
        await endpoints.first?.warmUp()
        return .warmedUp
      }
      try await drive(&group)
    }
  }

  /// Waits for the shutdown request, then for every endpoint to drain or the bound to pass.
  private func drive(_ group: inout ThrowingTaskGroup<Event, any Error>) async throws {
    var running = endpoints.count
    var draining = false
    while let event = try await group.next() {
      switch event {
      case .shutdownRequested:
        guard !draining else { continue }
        draining = true
        // First thing: the healthcheck must see the container is going away.
        do { try lockFile.remove() } catch { logger.error("\(error)") }
        health.markDraining()
        gate.beginDraining()
        logger.info("shutting down: lock removed, draining calls in flight", metadata: [
          "drain-timeout": "\(configuration.drainTimeout)"
        ])
        for endpoint in endpoints { endpoint.beginGracefulShutdown() }
        let bound = configuration.drainTimeout
        group.addTask {
          try? await Task.sleep(for: bound)
          return .drainExpired
        }
      case .endpointStopped(let name):
        running -= 1
        guard draining || Task.isCancelled else {
          throw WatcherError(.serverStopped, "the \(name) server stopped unexpectedly")
        }
        if running == 0 {
          logger.info("drained; exiting")
          group.cancelAll()
          return
        }
      case .trimmerStopped, .warmedUp:
        continue
      case .drainExpired:
        if running > 0 {
          logger.warning("drain timeout passed; cancelling the calls still in flight", metadata: [
            "drain-timeout": "\(configuration.drainTimeout)"
          ])
          group.cancelAll()
        }
      }
    }
  }
}

/// The watcher's first warm-up: started once, by whichever of ``WatcherService/startListening()``
/// and ``WatcherService/run()`` comes first, and awaited by the release of the start's pages.
private final class FirstWarmUp: Sendable {
  private let task = Mutex<Task<Void, Never>?>(nil)

  func start(_ warmUp: @escaping @Sendable () async -> Void) {
    task.withLock { task in
      if task == nil { task = Task(operation: warmUp) }
    }
  }

  /// Returns once the warm-up has ended (at once if it never started).
  var finished: Void {
    get async { await task.withLock { $0 }?.value }
  }
}
