#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import SettingValues
import Synchronization

/// Calls other functions' `pb.FxWatcher/Call` on their mesh port, as OpenFx's `MeshCall` does
/// (so any OpenFx watcher can answer), over one cached connection per address, with a deadline;
/// failures are thrown as ``HandlerError``s instead of crashing the process.
final class GRPCMeshClient: MeshClient {
  private let address: MeshAddress
  private let clients = Mutex<[String: GRPCClient<HTTP2ClientTransport.Posix>]>([:])

  init(address: MeshAddress) {
    self.address = address
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
    var options = CallOptions.defaults
    options.timeout = timeout
    options.waitForReady = false
    do {
      let client = try client(host: host, port: port, key: target)
      let reply = try await Pb_FxWatcher.Client(wrapping: client).call(request, options: options)
      return Data(reply.output.utf8)
    } catch let error as RPCError {
      throw HandlerError(HandlerError.Code(error.code), "mesh call to \(function) at \(target) failed: \(error.message)")
    } catch {
      throw HandlerError(.unavailable, "mesh call to \(function) at \(target) failed: \(error)")
    }
  }

  /// Closes every cached connection once its calls have finished.
  func shutdown() {
    for client in clients.withLock({ Array($0.values) }) {
      client.beginGracefulShutdown()
    }
  }

  private func client(host: String, port: Int, key: String) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
    try clients.withLock { clients in
      if let client = clients[key] { return client }
      let transport = try HTTP2ClientTransport.Posix(
        target: .dns(host: host, port: port),
        transportSecurity: .plaintext
      )
      let client = GRPCClient(transport: transport)
      Task { try? await client.runConnections() }
      clients[key] = client
      return client
    }
  }
}
