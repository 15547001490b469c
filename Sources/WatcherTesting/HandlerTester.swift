#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HandlerKit
import Logging
import Synchronization
import Watcher

/// Calls a handler in-process the way the watcher does — the same request and context, time
/// and size limits, and error mapping — with no sockets.
///
/// ```swift
/// import Testing
/// import WatcherTesting
///
/// @Test func greets() async throws {
///   #expect(try await Greeter().reply(to: "Ada") == "Hello, Ada")
/// }
/// ```
///
/// A failure is thrown as the ``HandlerKit/HandlerError`` the caller of a real watcher would
/// get as its gRPC status: a time limit as `deadlineExceeded`, any other error as `unknown`.
public struct HandlerTester: Sendable {
  private let invoker: Invoker

  /// A tester for `handler` under `configuration`'s limits (`EXEC_TIMEOUT`, `MAX_INFLIGHT`,
  /// `MAX_MESSAGE_BYTES`, `MESH_ADDRESS`); `functionName` is the context's function name.
  public init(
    _ handler: any Handler,
    configuration: WatcherConfiguration = .defaults,
    functionName: String = "function",
    logger: Logger = Logger(label: "watcher-testing", factory: { _ in SwiftLogNoOpLogHandler() })
  ) {
    invoker = .inProcess(handler: handler, functionName: functionName, configuration: configuration, logger: logger)
  }

  /// Calls with text, as `pb.FxWatcher/Call` does; the reply must be text too.
  public func call(_ text: String, info: Info = Info()) async throws(HandlerError) -> String {
    // The invoker has checked that the output is valid UTF-8.
    try await invoker.invokeForText(Request(text, info: info), requestID: nil, method: "Call").text ?? ""
  }

  /// Calls with bytes, as `pb.FxWatcher/CallBytes` does.
  public func call(bytes: Data, info: Info = Info()) async throws(HandlerError) -> Data {
    try await invoker.invoke(Request(input: bytes, info: info), requestID: nil, method: "CallBytes").bytes
  }

  /// Calls as `pb.FxWatcher/CallStream` does: every output a ``HandlerKit/StreamingHandler``
  /// writes, in order (a plain handler's one output).
  public func stream(_ request: Request) async throws(HandlerError) -> [Output] {
    let outputs = OutputCollector()
    try await invoker.invokeStreaming(request, requestID: nil, method: "CallStream") { output in
      outputs.append(output)
    }
    return outputs.all
  }
}

extension Handler {
  /// The handler's reply to `text`, called as the watcher calls it (see ``HandlerTester``).
  public func reply(to text: String, info: Info = Info()) async throws(HandlerError) -> String {
    try await HandlerTester(self).call(text, info: info)
  }

  /// The handler's reply to `bytes`, called as the watcher's `CallBytes` calls it.
  public func reply(to bytes: Data, info: Info = Info()) async throws(HandlerError) -> Data {
    try await HandlerTester(self).call(bytes: bytes, info: info)
  }
}

/// Outputs gathered from a stream, in order.
final class OutputCollector: Sendable {
  private let outputs = Mutex<[Output]>([])

  func append(_ output: Output) {
    outputs.withLock { $0.append(output) }
  }

  var all: [Output] { outputs.withLock { $0 } }
}
