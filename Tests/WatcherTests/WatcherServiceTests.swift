import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import Watcher

/// Opens once; every waiter then returns. Waiting ends early (returning false) on cancellation.
final class Gate: Sendable {
  private let stream: AsyncStream<Void>
  private let continuation: AsyncStream<Void>.Continuation

  init() { (stream, continuation) = AsyncStream.makeStream() }

  func open() { continuation.finish() }

  func wait() async -> Bool {
    for await _ in stream {}
    return !Task.isCancelled
  }
}

/// Records what happened, in order.
final class Journal: Sendable {
  private let lines = Mutex<[String]>([])
  func record(_ line: String) { lines.withLock { $0.append(line) } }
  var entries: [String] { lines.withLock { $0 } }
}

/// An endpoint whose binding and draining the test controls.
struct ScriptedEndpoint: Endpoint {
  let name: String
  let requestedAddress = "127.0.0.1:1"
  let journal: Journal
  let lockPath: String
  /// Opened by the test to let the port "bind".
  let bound = Gate()
  /// When false, the endpoint never finishes draining and must be cancelled.
  var drains = true
  /// When true, binding fails.
  var failsToBind = false
  private let shutdown = Gate()

  init(name: String, journal: Journal, lockPath: String, drains: Bool = true, failsToBind: Bool = false) {
    self.name = name
    self.journal = journal
    self.lockPath = lockPath
    self.drains = drains
    self.failsToBind = failsToBind
  }

  func serve() async throws {
    if failsToBind {
      _ = await bound.wait()
      throw POSIXError(.EADDRINUSE)
    }
    guard await shutdown.wait() else {
      journal.record("\(name) cancelled")
      throw CancellationError()
    }
    if !drains {
      do { try await Task.sleep(for: .seconds(3600)) } catch {
        journal.record("\(name) cancelled while draining")
        throw error
      }
    }
    journal.record("\(name) drained")
  }

  func boundAddress() async throws -> String {
    _ = await bound.wait()
    if failsToBind { throw CancellationError() }  // as grpc-swift: "not listening", the cause is serve()'s
    return "127.0.0.1:1"
  }

  func beginGracefulShutdown() {
    journal.record("\(name) shutdown begun, lock \(FileManager.default.fileExists(atPath: lockPath) ? "present" : "absent")")
    shutdown.open()
  }
}

@Suite("Watcher lifecycle", .timeLimit(.minutes(1)))
struct WatcherServiceTests {
  let lockPath = FileManager.default.temporaryDirectory.appendingPathComponent("lock-\(UUID().uuidString)").path
  let journal = Journal()

  func service(_ endpoints: [ScriptedEndpoint], drainTimeout: Duration = .seconds(30)) -> WatcherService {
    var configuration = WatcherConfiguration.defaults
    configuration.lockFilePath = lockPath
    configuration.drainTimeout = drainTimeout
    return WatcherService(configuration: configuration, endpoints: endpoints, logger: Logger.quiet)
  }

  var lockExists: Bool { FileManager.default.fileExists(atPath: lockPath) }

  func waitUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    #expect(condition())
  }

  @Test func writesTheLockOnlyOnceEveryPortIsBoundAndRemovesItBeforeDraining() async throws {
    let gateway = ScriptedEndpoint(name: "gateway", journal: journal, lockPath: lockPath)
    let mesh = ScriptedEndpoint(name: "mesh", journal: journal, lockPath: lockPath)
    let group = ServiceGroup(services: [service([gateway, mesh])], logger: Logger.quiet)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      try await Task.sleep(for: .milliseconds(100))
      #expect(!lockExists)
      gateway.bound.open()
      try await Task.sleep(for: .milliseconds(100))
      #expect(!lockExists, "one port bound is not ready")
      mesh.bound.open()
      try await waitUntil { lockExists }
      await group.triggerGracefulShutdown()
      try await tasks.waitForAll()
    }
    #expect(!lockExists)
    #expect(Set(journal.entries) == [
      "gateway shutdown begun, lock absent", "mesh shutdown begun, lock absent", "gateway drained", "mesh drained",
    ])
  }

  @Test func removesAStaleLockAndFailsClearlyWhenAPortCannotBeBound() async throws {
    #expect(FileManager.default.createFile(atPath: lockPath, contents: nil))
    let gateway = ScriptedEndpoint(name: "gateway", journal: journal, lockPath: lockPath)
    let mesh = ScriptedEndpoint(name: "mesh", journal: journal, lockPath: lockPath, failsToBind: true)
    gateway.bound.open()
    mesh.bound.open()
    let error = await #expect(throws: WatcherError.self) { try await service([gateway, mesh]).run() }
    #expect(error?.code == .bindFailed)
    #expect(error?.message.contains("mesh port 127.0.0.1:1") == true)
    #expect(error?.message.hasSuffix("\(POSIXError(.EADDRINUSE))") == true, "\(error!)")
    #expect(!lockExists)
  }

  @Test func cancelsCallsStillInFlightWhenTheDrainBoundPasses() async throws {
    let gateway = ScriptedEndpoint(name: "gateway", journal: journal, lockPath: lockPath, drains: false)
    let mesh = ScriptedEndpoint(name: "mesh", journal: journal, lockPath: lockPath)
    gateway.bound.open()
    mesh.bound.open()
    let group = ServiceGroup(
      services: [service([gateway, mesh], drainTimeout: .milliseconds(200))], logger: Logger.quiet)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      try await waitUntil { lockExists }
      let start = ContinuousClock.now
      await group.triggerGracefulShutdown()
      try await tasks.waitForAll()
      let elapsed = ContinuousClock.now - start
      #expect(elapsed >= .milliseconds(200))
      #expect(elapsed < .seconds(20))
    }
    #expect(journal.entries.contains("gateway cancelled while draining"))
    #expect(journal.entries.contains("mesh drained"))
  }

  struct StopsAtOnce: Endpoint {
    let name = "gateway"
    let requestedAddress = "127.0.0.1:1"
    func serve() async throws {}
    func boundAddress() async throws -> String { "127.0.0.1:1" }
    func beginGracefulShutdown() {}
  }

  @Test func aServerThatStopsByItselfIsAnError() async throws {
    var configuration = WatcherConfiguration.defaults
    configuration.lockFilePath = lockPath
    let watcher = WatcherService(configuration: configuration, endpoints: [StopsAtOnce()], logger: Logger.quiet)
    let group = ServiceGroup(services: [watcher], logger: Logger.quiet)
    let error = await #expect(throws: (any Error).self) { try await group.run() }
    #expect("\(error!)".contains("stopped unexpectedly"))
    #expect(!lockExists)
  }
}
