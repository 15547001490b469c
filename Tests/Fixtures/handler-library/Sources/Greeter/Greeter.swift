import Foundation
import HandlerKit

/// Greets by name; an empty name is the caller's mistake.
struct Greeter: TextHandler {
  func handle(_ name: String, context: Context) async throws -> String {
    guard !name.isEmpty else { throw HandlerError(.invalidArgument, "send a name") }
    context.logger.info("greeting from a handler library", metadata: ["name": "\(name)"])
    return "Hello, \(name)"
  }
}

/// An error of the library's own that chooses its status.
struct OutOfStock: Error, HandlerErrorConvertible {
  var item: String
  var handlerError: HandlerError { HandlerError(.notFound, "no \(item) left") }
}

/// Shouts the input back; "stock:<item>" throws the library's own error.
struct Shout: Handler {
  func handle(_ request: Request, context: Context) async throws -> Output {
    let text = try request.requireText()
    if text.hasPrefix("stock:") { throw OutOfStock(item: String(text.dropFirst(6))) }
    try await Task.sleep(for: .milliseconds(1))
    return .text(text.uppercased())
  }
}

@_cdecl("fxwatcher_handler_library")
public func handlerLibrary(_ handshake: UnsafeMutablePointer<UInt32>) -> UnsafeMutableRawPointer? {
  HandlerLibrary.export(
    [
      "greeter": { Greeter() },
      "shout": { Shout() },
      "unconfigured": { throw HandlerError(.failedPrecondition, "GREETING is not set") },
    ],
    defaultName: "greeter",
    handshake: handshake
  )
}
