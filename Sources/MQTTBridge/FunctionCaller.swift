#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SettingValues

/// Which RPC the bridge calls a function with.
public enum FunctionMethod: String, Sendable, CaseIterable {
  /// A watcher's `pb.FxWatcher/Call`: text in and out (replies must be UTF-8).
  case call
  /// A watcher's `pb.FxWatcher/CallBytes`: bytes in and out.
  case callBytes = "call-bytes"
  /// An OpenFx gateway's `pb.FxGateway/Invoke`, naming the function as its `Service`.
  case invoke
}

/// A failed call, as a device sees it: the gRPC status name and message.
public struct FunctionCallError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The gRPC status code's canonical name, such as `DEADLINE_EXCEEDED`.
  public var status: String
  /// The status message.
  public var message: String

  /// `STATUS: message`, what the bridge publishes on the error topic.
  public var description: String { "\(status): \(message)" }
}

/// Calls one function over one gRPC connection, reused for every message.
final class FunctionCaller: Sendable {
  private let client: GRPCClient<HTTP2ClientTransport.Posix>
  private let method: FunctionMethod
  private let function: String
  private let timeout: Duration

  init(host: String, port: Int, method: FunctionMethod, function: String, timeout: Duration) throws {
    // A function that restarts is reached again within about two seconds (gRPC's default
    // backoff grows to two minutes, failing every message meanwhile).
    let transport = try HTTP2ClientTransport.Posix(
      target: .dns(host: host, port: port),
      transportSecurity: .plaintext,
      config: .defaults { $0.backoff = .init(initial: .milliseconds(100), max: .seconds(2), multiplier: 1.6, jitter: 0.2) }
    )
    client = GRPCClient(transport: transport)
    self.method = method
    self.function = function
    self.timeout = timeout
  }

  /// Keeps the connection up until ``close()``.
  func runConnections() async throws {
    try await client.runConnections()
  }

  /// Lets calls in flight finish, then closes the connection.
  func close() {
    client.beginGracefulShutdown()
  }

  /// Calls the function with `input`, which came on `topic`.
  func call(_ input: Data, topic: String) async throws(FunctionCallError) -> Data {
    var options = CallOptions.defaults
    options.timeout = timeout
    do {
      switch method {
      case .call, .callBytes:
        let request = request(input, topic: topic)
        let watcher = Pb_FxWatcher.Client(wrapping: client)
        if method == .call {
          return Data(try await watcher.call(request, options: options).output.utf8)
        }
        return try await watcher.callBytes(request, options: options).output
      case .invoke:
        var request = Pb_InvokeServiceRequest()
        request.service = function
        request.input = input
        let gateway = Pb_FxGateway.Client(wrapping: client)
        return Data(try await gateway.invoke(request, options: options).msg.utf8)
      }
    } catch let error as RPCError {
      throw FunctionCallError(status: error.code.canonicalName, message: error.message)
    } catch {
      throw FunctionCallError(status: "UNKNOWN", message: "\(error)")
    }
  }

  private func request(_ input: Data, topic: String) -> Pb_Request {
    var request = Pb_Request()
    request.input = input
    request.info.functionName = function
    request.info.timeout = "\(timeout.milliseconds)ms"
    request.info.trigger.name = "mqtt"
    request.info.trigger.topic = topic
    request.info.trigger.time = Date.now.formatted(.iso8601)
    return request
  }
}

extension RPCError.Code {
  /// The name gRPC's documentation gives the code: `DEADLINE_EXCEEDED`, `INTERNAL`, ….
  var canonicalName: String {
    if self == .internalError { return "INTERNAL" }
    var name = ""
    for character in String(describing: self) {
      if character.isUppercase { name.append("_") }
      name.append(character.uppercased())
    }
    return name
  }
}
