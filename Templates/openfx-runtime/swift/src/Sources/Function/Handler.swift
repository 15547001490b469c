import HandlerKit

/// Your function. OpenFx calls it with the request's input; what it returns is the reply.
/// Throw `HandlerError(.invalidArgument, "...")` (or any error) to fail the call with a clear
/// gRPC status; the watcher stays up.
struct Handler: TextHandler {
  func handle(_ text: String, context: Context) async throws -> String {
    guard !text.isEmpty else { throw HandlerError(.invalidArgument, "say something") }
    return "Hello, \(text)"
  }
}
