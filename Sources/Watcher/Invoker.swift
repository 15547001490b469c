import HandlerKit
import Logging

/// The invocation pipeline, independent of any transport: builds the ``Context``, calls the
/// handler, turns every failure into a ``HandlerError`` and logs one line per call at debug.
///
/// A transport decodes its frames into a ``Request``, calls ``invoke(_:requestID:method:)``,
/// and encodes the ``Output`` or maps the ``HandlerError`` to its own status; nothing here
/// knows about gRPC.
struct Invoker: Sendable {
  /// The hosted handler.
  let handler: any Handler
  /// The function's name when the caller sends none.
  let functionName: String
  /// The watcher's logger; each call's context gets a copy carrying its request id.
  let logger: Logger

  /// The longest caller-supplied request id that is kept; longer ones are replaced.
  static let maximumRequestIDLength = 128

  /// Runs one call and returns the handler's output.
  func invoke(_ request: Request, requestID: String?, method: String) async throws(HandlerError) -> Output {
    let start = ContinuousClock.now
    let context = Context(
      requestID: requestID.flatMap(Self.acceptableRequestID) ?? Context.makeRequestID(),
      functionName: request.info.functionName.isEmpty ? functionName : request.info.functionName,
      deadline: nil,
      logger: logger
    )
    do {
      let output = try await handler.handle(request, context: context)
      logCall(context, method: method, start: start, outcome: "ok")
      return output
    } catch {
      let failure = HandlerError(converting: error)
      logCall(context, method: method, start: start, outcome: failure.code.rawValue)
      if failure.code == .unknown || failure.code == .internalError {
        context.logger.warning("handler failed", metadata: ["error": "\(failure.message)"])
      }
      throw failure
    }
  }

  /// Runs one call whose reply must be text, as OpenFx's `Call` (a proto3 `string`) requires.
  ///
  /// Output that is not valid UTF-8 is an `internalError`, never repaired text.
  func invokeForText(_ request: Request, requestID: String?, method: String) async throws(HandlerError) -> String {
    let output = try await invoke(request, requestID: requestID, method: method)
    guard let text = output.text else {
      throw HandlerError(
        .internalError,
        "the handler's output (\(output.bytes.count) bytes) is not valid UTF-8, and \(method) replies with a string"
      )
    }
    return text
  }

  private func logCall(_ context: Context, method: String, start: ContinuousClock.Instant, outcome: String) {
    guard context.logger.logLevel <= .debug else { return }
    let elapsed = ContinuousClock.now - start
    context.logger.debug(
      "call",
      metadata: [
        "method": "\(method)",
        "status": "\(outcome)",
        "duration-ms": "\(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3)",
      ]
    )
  }

  /// `id` when it is a reasonable request id (1–128 printable ASCII characters), else `nil`.
  static func acceptableRequestID(_ id: String) -> String? {
    guard !id.isEmpty, id.utf8.count <= maximumRequestIDLength,
      id.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
    else { return nil }
    return id
  }
}
