import ArgumentParser
import HandlerKit
import Logging
import NIOPosix
import ServiceLifecycle
import SettingValues

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The watcher's entry point: a function's `main` calls one of these and the process serves
/// until SIGTERM or SIGINT.
///
/// ```swift
/// @main struct Main {
///   static func main() async { await FxWatcher.main(handler: Greeter()) }
/// }
/// ```
///
/// Settings come from the environment (see ``WatcherConfiguration``) and the same as flags
/// (`--help` lists them); flags win. Bad settings and unknown handler names end the process
/// at once with status 64 and a message naming the problem.
///
/// Both run on the caller's executor (`nonisolated(nonsending)`): from a program's `main` or
/// top-level code the start goes on on the main thread, without waiting for a thread to be made.
public enum FxWatcher {
  /// Serves `handler`, whatever `HANDLER_NAME` and `HANDLER_FILE` say (a differing name or a
  /// library is noted in the log).
  nonisolated(nonsending) public static func main(
    handler: any Handler,
    name: String = HandlerRegistry.openFxDefaultName,
    arguments: [String] = Array(CommandLine.arguments.dropFirst()),
    environment: [String: String] = SettingsEnvironment.processVariables()
  ) async -> Never {
    await run(arguments: arguments, environment: environment) { configuration in
      var notes: [String] = []
      if let requested = configuration.handlerName, requested != name, requested != HandlerRegistry.openFxDefaultName {
        notes.append("HANDLER_NAME \"\(requested)\" ignored: this binary hosts one handler, \(name)")
      }
      if let file = configuration.handlerFile {
        notes.append("HANDLER_FILE \(file) ignored: this binary hosts one handler, \(name)")
      }
      let registry = HandlerRegistry(defaultName: name, factories: [name: { handler }])
      return (registry, nil, notes)
    }
  }

  /// Serves the handler that `HANDLER_NAME` / `--handler` picks: from `registry`, or from the
  /// handler library `HANDLER_FILE` / `--handler-file` names (see ``HandlerRegistry/init(libraryAt:)``;
  /// this package's `fxwatcher` is linked for it).
  nonisolated(nonsending) public static func main(
    registry: HandlerRegistry,
    arguments: [String] = Array(CommandLine.arguments.dropFirst()),
    environment: [String: String] = SettingsEnvironment.processVariables()
  ) async -> Never {
    await run(arguments: arguments, environment: environment) { configuration in
      guard let file = configuration.handlerFile else {
        return (registry, configuration.handlerName, [])
      }
      return (try HandlerRegistry(libraryAt: file), configuration.handlerName, ["handlers loaded from \(file)"])
    }
  }

  /// Parses the settings, gets the handlers with `resolve` (the registry, the name to pick from
  /// it, and notes for the log), picks one and serves it until shut down.
  ///
  /// Runs on the caller's executor (`nonisolated(nonsending)`, as the `main`s above do): called
  /// from a program's top-level code, the start goes on on the main thread at once instead of
  /// waiting for a thread of the cooperative pool to be made for it.
  nonisolated(nonsending) private static func run(
    arguments: [String],
    environment: [String: String],
    resolve: (WatcherConfiguration) throws -> (registry: HandlerRegistry, name: String?, notes: [String])
  ) async -> Never {
    // First, while this is the process's only thread: every later first write to the runtime's
    // caches would otherwise interrupt the other CPU (ZeroFilledData).
    ZeroFilledData.populate()
    // The event loops' threads, the start's longest wait, are made beside the rest: the
    // settings, the ports bound ahead (ListeningSockets), the log's set-up. Then the same thread
    // asks the runtime the conformance questions of the way to a first call (ConformanceLookups)
    // while this one takes the ports over to the event loops and warms up. (On this thread,
    // before the event loops were asked for, the lookups held that back: 0.1-0.2 ms later to a
    // first call; on a thread of their own, one thread more to make.)
    Task.detached {
      _ = MultiThreadedEventLoopGroup.singleton
      ConformanceLookups.lookUpAhead()
    }
    let configuration: WatcherConfiguration
    let chosen: (name: String, handler: any Handler)
    let notes: [String]
    do {
      // Without flags (as an image's ENTRYPOINT runs), there is nothing to parse: ArgumentParser's
      // reflection over the flags was a seventh of a cold start's CPU.
      let options = arguments.isEmpty ? nil : try WatcherOptions.parse(arguments)
      let settings = options.map { environment.merging($0.environment) { $1 } } ?? environment
      configuration = try WatcherConfiguration(environment: settings)
      let resolved = try resolve(configuration)
      if options?.listHandlers == true {
        print(resolved.registry.names.joined(separator: "\n"))
        exit(0)
      }
      chosen = try resolved.registry.handler(named: resolved.name)
      notes = resolved.notes
    } catch let error as WatcherError {
      WatcherOptions.exit(withError: ValidationError(error.message))
    } catch {
      WatcherOptions.exit(withError: error)
    }

    // The ports accept connections from here on: callers' calls wait for the rest of the start
    // instead of being refused.
    let listeningSockets = ListeningSockets(configuration: configuration)

    let level = configuration.logLevel
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
    var logger = Logger(label: "fxwatcher")
    logger[metadataKey: "handler"] = "\(chosen.name)"
    for note in notes { logger.notice("\(note)") }

    // The process is the watcher's: large messages' memory stays in the heap while calls run.
    GlibcMalloc.keepFreedMemoryWhileBusy(environment: environment)
    let watcher = WatcherService(
      configuration: configuration,
      handler: chosen.handler,
      functionName: chosen.name,
      logger: logger,
      onReady: nil,
      listeningSockets: listeningSockets
    )
    // The ports are bound and the call path warmed before the service group's set-up (half a
    // millisecond of a cold start), which does not hold them back.
    await watcher.startListening()
    let group = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        // Named with its description, as ServiceLifecycle would name it with "\(service)", whose
        // casts to the printing protocols each scanned every conformance record at start.
        services: [.init(service: watcher, serviceName: watcher.description)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
      )
    )
    do {
      try await group.run()
      exit(0)
    } catch {
      logger.critical("\(error)")
      exit(1)
    }
  }
}

/// The command-line flags: each sets the environment variable of the same meaning.
struct WatcherOptions: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fxwatcher",
    abstract: "Serves one OpenFx function over gRPC (pb.FxWatcher) on the gateway and mesh ports."
  )

  @Option(help: "Bind address for both ports (env WATCHER_HOST; default 0.0.0.0).")
  var host: String?

  @Option(help: "Gateway port (env WATCHER_PORT or PORT; default 50051; 0 picks a free port).")
  var port: String?

  @Option(help: "Mesh port (env MESH_PORT; default 50052).")
  var meshPort: String?

  @Option(help: "Handler to serve (env HANDLER_NAME; default: the binary's or the library's default).")
  var handler: String?

  @Option(help: "Handler library to load the handlers from (env HANDLER_FILE; default: none, the compiled-in ones).")
  var handlerFile: String?

  @Option(help: "Health lock file (env LOCK_FILE; default /tmp/.lock).")
  var lockFile: String?

  @Option(help: "trace, debug, info, notice, warning, error or critical (env LOG_LEVEL; default info).")
  var logLevel: String?

  @Option(help: "Bound on draining calls at shutdown, e.g. 10s (env DRAIN_TIMEOUT; default 10s).")
  var drainTimeout: String?

  @Option(help: "Default bound on one call, 0 for none (env EXEC_TIMEOUT; default 60s).")
  var execTimeout: String?

  @Option(name: .customLong("max-inflight"), help: "Most calls run at once; more are refused, 0 for no limit (env MAX_INFLIGHT; default 0).")
  var maxInFlight: String?

  @Option(help: "Largest input or output of a call, e.g. 4MiB (env MAX_MESSAGE_BYTES; default 4MiB).")
  var maxMessageBytes: String?

  @Option(help: "The function's name, for the gateway methods' Service (env FUNCTION_NAME; default: the handler's name).")
  var functionName: String?

  @Option(help: "Port of the Prometheus metrics at /metrics (env METRICS_PORT; default: none).")
  var metricsPort: String?

  @Option(help: "Namespace of other functions, for mesh calls (env MESH_NAMESPACE; default openfx-fn).")
  var meshNamespace: String?

  @Option(help: "Mesh address of other functions (env MESH_ADDRESS; default {function}.{namespace}:50052).")
  var meshAddress: String?

  @Option(help: "How long the event loops poll after writing before they sleep, 0 for not at all (env BUSY_POLL; default 30us).")
  var busyPoll: String?

  @Flag(help: "List the handlers (compiled-in, or the library's) and exit.")
  var listHandlers = false

  /// The flags given, as environment variables.
  var environment: [String: String] {
    typealias Setting = WatcherConfiguration.Setting
    let pairs: [(String, String?)] = [
      (Setting.host, host), (Setting.port, port), (Setting.meshPort, meshPort),
      (Setting.handlerName, handler), (Setting.handlerFile, handlerFile), (Setting.lockFile, lockFile), (Setting.logLevel, logLevel),
      (Setting.drainTimeout, drainTimeout), (Setting.execTimeout, execTimeout), (Setting.maxInFlight, maxInFlight),
      (Setting.maxMessageBytes, maxMessageBytes), (Setting.functionName, functionName),
      (Setting.meshNamespace, meshNamespace), (Setting.meshAddress, meshAddress), (Setting.metricsPort, metricsPort),
      (Setting.busyPoll, busyPoll),
    ]
    return Dictionary(uniqueKeysWithValues: pairs.compactMap { name, value in value.map { (name, $0) } })
  }
}
