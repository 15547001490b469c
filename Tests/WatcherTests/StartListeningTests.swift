import Foundation
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import Testing

import SettingValues
@testable import Watcher

/// A port nothing listens on now: bound to port 0 and closed.
private func freeLoopbackPort() async throws -> Int {
  let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .bind(host: "127.0.0.1", port: 0).get()
  let port = try #require(listener.localAddress?.port)
  try await listener.close()
  return port
}

/// Whether a TCP connection to 127.0.0.1:`port` is accepted.
private func accepts(_ port: Int) async -> Bool {
  guard let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .connect(host: "127.0.0.1", port: port).get()
  else { return false }
  try? await channel.close()
  return true
}

@Suite("Listening before run", .timeLimit(.minutes(1)))
struct StartListeningTests {
  let lockPath = FileManager.default.temporaryDirectory.appendingPathComponent("lock-\(UUID().uuidString)").path

  func watcher(port: Int, meshPort: Int, onReady: @escaping @Sendable ([String: String]) -> Void = { _ in })
    -> WatcherService
  {
    var configuration = WatcherConfiguration.defaults
    configuration.host = "127.0.0.1"
    configuration.port = port
    configuration.meshPort = meshPort
    configuration.lockFilePath = lockPath
    return WatcherService(
      configuration: configuration, handler: ClosureHandler { request, _ in .bytes(request.input) },
      functionName: "echo", logger: Logger.quiet, onReady: onReady)
  }

  @Test func thePortsAcceptBeforeRunWhichThenServesOnThemAndWritesTheLock() async throws {
    let (port, meshPort) = (try await freeLoopbackPort(), try await freeLoopbackPort())
    let ready = Mutex<[String: String]?>(nil)
    let service = watcher(port: port, meshPort: meshPort) { addresses in ready.withLock { $0 = addresses } }
    await service.startListening()
    #expect(await accepts(port))
    #expect(await accepts(meshPort))
    #expect(!FileManager.default.fileExists(atPath: lockPath), "not ready before run()")

    let group = ServiceGroup(services: [service], logger: Logger.quiet)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      for _ in 0..<500 where ready.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
      #expect(ready.withLock { $0 } == ["gateway": "127.0.0.1:\(port)", "mesh": "127.0.0.1:\(meshPort)"])
      #expect(FileManager.default.fileExists(atPath: lockPath))
      try await withServedClientCall(port: port)
      await group.triggerGracefulShutdown()
      try await tasks.waitForAll()
    }
    #expect(!FileManager.default.fileExists(atPath: lockPath))
    #expect(!(await accepts(port)), "the port is closed once the watcher has stopped")
  }

  @Test func runReportsAPortThatStartListeningCouldNotBind() async throws {
    let taken = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .bind(host: "127.0.0.1", port: 0).get()
    let takenPort = try #require(taken.localAddress?.port)
    let service = watcher(port: try await freeLoopbackPort(), meshPort: takenPort)
    await service.startListening()  // returns: the warm-up needs no port
    let error = await #expect(throws: WatcherError.self) { try await service.run() }
    #expect(error?.code == .bindFailed)
    #expect(error?.message.contains("mesh port 127.0.0.1:\(takenPort)") == true)
    #expect(!FileManager.default.fileExists(atPath: lockPath))
    try await taken.close()
  }

  @Test func aWatcherServesThePortsBoundAheadWhichQueueConnectionsUntilThen() async throws {
    var configuration = WatcherConfiguration.defaults
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.meshPort = 0
    configuration.lockFilePath = lockPath
    let sockets = ListeningSockets(configuration: configuration)
    let port = try #require(sockets.gateway.flatMap { localPort(of: $0.descriptor) })
    let meshPort = try #require(sockets.mesh.flatMap { localPort(of: $0.descriptor) })
    #expect(port != meshPort)
    #expect(await accepts(port), "the kernel completes connections before any event loop serves the port")

    let ready = Mutex<[String: String]?>(nil)
    let service = WatcherService(
      configuration: configuration, handler: ClosureHandler { request, _ in .bytes(request.input) },
      functionName: "echo", logger: Logger.quiet, onReady: { addresses in ready.withLock { $0 = addresses } },
      listeningSockets: sockets)
    let group = ServiceGroup(services: [service], logger: Logger.quiet)
    try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask { try await group.run() }
      for _ in 0..<500 where ready.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
      #expect(ready.withLock { $0 } == ["gateway": "127.0.0.1:\(port)", "mesh": "127.0.0.1:\(meshPort)"])
      try await withServedClientCall(port: port)
      try await withServedClientCall(port: meshPort)
      await group.triggerGracefulShutdown()
      try await tasks.waitForAll()
    }
    #expect(!(await accepts(port)), "the endpoint took the socket over and closed it")
  }

  @Test func onlyAnIPAddressAndAPortFreeToBindAreBoundAhead() async throws {
    #expect(ListeningSocket(host: "localhost", port: 0, backlog: 8) == nil, "a name is left to the resolver")
    let taken = try #require(ListeningSocket(host: "127.0.0.1", port: 0, backlog: 8))
    let port = try #require(localPort(of: taken.descriptor))
    #expect(ListeningSocket(host: "127.0.0.1", port: port, backlog: 8) == nil)
    #expect(ListeningSocket(host: "::1", port: 0, backlog: 8) != nil || !ipv6LoopbackExists())
  }

  @Test func aSocketNoEndpointTookIsClosedWhenLetGo() async throws {
    var socket = ListeningSocket(host: "127.0.0.1", port: 0, backlog: 8)
    let port = try #require(socket.flatMap { localPort(of: $0.descriptor) })
    #expect(await accepts(port))
    socket = nil
    #expect(!(await accepts(port)))
  }

  /// The port `descriptor` is bound to.
  private func localPort(of descriptor: CInt) -> Int? {
    var address = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let found = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    guard found == 0 else { return nil }
    return withUnsafeBytes(of: address) { Int(UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self))) }
  }

  /// Whether this machine has ::1 (a container may have no IPv6).
  private func ipv6LoopbackExists() -> Bool {
    (try? SocketAddress(ipAddress: "::1", port: 0)).map { address in
      let descriptor = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
      defer { close(descriptor) }
      return address.withSockAddr { bind(descriptor, $0, socklen_t($1)) } == 0
    } ?? false
  }

  /// One echo call through grpc-swift to `port`.
  private func withServedClientCall(port: Int) async throws {
    let transport = try HTTP2ClientTransport.Posix(
      target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
    try await withGRPCClient(transport: transport) { client in
      var request = Pb_Request()
      request.input = Data("early".utf8)
      let reply = try await Pb_FxWatcher.Client(wrapping: client).call(request)
      #expect(reply.output == "early")
    }
  }
}

@Suite("Process environment")
struct ProcessEnvironmentTests {
  @Test func readsWhatGetenvReadsValuesWithEqualsSignsIncluded() throws {
    setenv("FX_TEST_PROCESS_VARIABLE", "a=b c", 1)
    defer { unsetenv("FX_TEST_PROCESS_VARIABLE") }
    let variables = SettingsEnvironment.processVariables()
    #expect(variables["FX_TEST_PROCESS_VARIABLE"] == "a=b c")
    #expect(variables["PATH"] != nil)
    for (name, value) in variables {
      #expect(getenv(name).map { String(cString: $0) } == value, "\(name)")
    }
  }
}
