#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FxWatcherMessages
import HandlerKit
import NIOCore
import NIOPosix
import SettingValues
import Synchronization

/// Calls other functions' `pb.FxWatcher/Call` on their mesh port, as OpenFx's `MeshCall` does
/// (so any OpenFx watcher can answer), over one cached plaintext HTTP/2 connection per address
/// (``MeshConnection``), with a deadline; failures are thrown as ``HandlerError``s with the gRPC
/// status code they came with, instead of crashing the process.
///
/// A call the callee surely did not see (its connection was going away, its stream refused) is
/// sent once more, on a new connection.
final class GRPCMeshClient: MeshClient {
  /// The largest reply taken, in bytes (gRPC clients' usual 4 MiB).
  static let maxReplyBytes = 4 * 1024 * 1024

  /// How long a connection may carry no call before it is closed (the next call reconnects).
  static let defaultIdleTimeout = Duration.seconds(300)

  private let address: MeshAddress
  private let group: any EventLoopGroup
  private let idleTimeout: Duration
  private let state = Mutex(State())

  private struct State {
    var connections: [String: Task<MeshConnection, any Error>] = [:]
    var isShutDown = false
  }

  /// A client for the functions `address` names; a connection that carried no call for
  /// `idleTimeout` is closed.
  init(
    address: MeshAddress, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    idleTimeout: Duration = defaultIdleTimeout
  ) {
    self.address = address
    self.group = group
    self.idleTimeout = idleTimeout
  }

  func call(_ function: String, input: Data, timeout: Duration) async throws -> Data {
    guard let (host, port) = address.resolve(function) else {
      throw HandlerError(
        .invalidArgument,
        "cannot call function \"\(function.prefix(64))\": a function name is letters, digits, '-' and '.', and MESH_ADDRESS must give host:port")
    }
    let target = MeshAddress.text(host: host, port: port)
    var request = Pb_Request()
    request.input = input
    request.info.functionName = function
    request.info.timeout = "\(timeout.milliseconds)ms"
    request.info.trigger.name = "mesh"
    let deadline = ContinuousClock.now + timeout
    do {
      let message: [UInt8] = try request.serializedBytes()
      var attempt = 1
      while true {
        let connection = try await connection(host: host, port: port, key: target, deadline: deadline)
        let remaining = deadline - .now
        guard remaining > .zero else {
          throw MeshCallFailure(code: .deadlineExceeded, message: "connecting took the whole \(timeout)")
        }
        do {
          let reply = try await connection.call(
            path: "/pb.FxWatcher/Call", message: message, timeout: remaining, maxReplyBytes: Self.maxReplyBytes)
          guard let decoded = try? Pb_Reply(serializedBytes: ProtobufBytes(buffer: reply)) else {
            throw MeshCallFailure.internalError("the reply is not a pb.Reply")
          }
          return Data(decoded.output.utf8)
        } catch let failure as MeshCallFailure where failure.wasNotProcessed && attempt == 1 {
          attempt += 1  // a connection that takes no more calls is replaced by the next lookup
        }
      }
    } catch let failure as MeshCallFailure {
      throw HandlerError(failure.code, "mesh call to \(function) at \(target) failed: \(failure.message)")
    } catch {
      throw HandlerError(.unavailable, "mesh call to \(function) at \(target) failed: \(error)")
    }
  }

  /// Closes every cached connection once its calls have finished; later calls fail as
  /// `UNAVAILABLE`.
  func shutdown() {
    let connecting = state.withLock { state in
      state.isShutDown = true
      defer { state.connections = [:] }
      return Array(state.connections.values)
    }
    for task in connecting {
      Task { try? await task.value.closeWhenIdle() }
    }
  }

  /// The cached connection to `key`, connected first if there is none or it takes no calls.
  private func connection(host: String, port: Int, key: String, deadline: ContinuousClock.Instant) async throws
    -> MeshConnection
  {
    while true {
      let task = try state.withLock { state in
        guard !state.isShutDown else {
          throw MeshCallFailure.unavailable("the watcher is shutting down")
        }
        if let task = state.connections[key] { return task }
        let task = Task { [group, idleTimeout] in
          try await MeshConnection.connect(
            host: host, port: port, authority: key, group: group, timeout: deadline - .now, idleTimeout: idleTimeout)
        }
        state.connections[key] = task
        return task
      }
      let connection: MeshConnection
      do {
        connection = try await task.value
      } catch {
        forget(key, ifStill: task)
        guard ContinuousClock.now < deadline else {
          throw MeshCallFailure(code: .deadlineExceeded, message: "no connection within the call's time: \(error)")
        }
        throw MeshCallFailure.unavailable("cannot connect: \(error)")
      }
      if connection.acceptsCalls { return connection }
      forget(key, ifStill: task)
      connection.closeWhenIdle()
    }
  }

  private func forget(_ key: String, ifStill task: Task<MeshConnection, any Error>) {
    state.withLock { state in
      if state.connections[key] == task { state.connections[key] = nil }
    }
  }
}
