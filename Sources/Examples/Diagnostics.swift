import HandlerKit

/// Waits, then echoes: the input is `<milliseconds>` or `<milliseconds>:<reply>`.
///
/// For checking drain, timeouts and probes against a real watcher; it honours cancellation.
public struct Sleep: Handler {
  /// The longest wait it accepts: ten minutes.
  public static let maximumMilliseconds = 600_000

  /// Creates the handler.
  public init() {}

  /// Sleeps for the requested time, then replies with the text after the colon (or `slept <ms>ms`).
  public func handle(_ request: Request, context: Context) async throws -> Output {
    let text = try request.requireText()
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    guard let milliseconds = Int(parts[0]),
      (0...Self.maximumMilliseconds).contains(milliseconds)
    else {
      throw HandlerError.invalidArgument(
        "expected <milliseconds>[:<reply>] with 0...\(Self.maximumMilliseconds) milliseconds, got \"\(text.prefix(64))\""
      )
    }
    try await Task.sleep(for: .milliseconds(milliseconds))
    return .text(parts.count > 1 ? String(parts[1]) : "slept \(milliseconds)ms")
  }
}

/// Always fails: the input is `<code>:<message>` (a ``HandlerError/Code`` name) or a bare message,
/// which is thrown as a plain error (`unknown`).
///
/// For checking how failures reach callers against a real watcher.
public struct Fail: Handler {
  /// Creates the handler.
  public init() {}

  /// Throws the requested error.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    let text = try request.requireText()
    if let colon = text.firstIndex(of: ":"), let code = HandlerError.Code(rawValue: String(text[..<colon])) {
      throw HandlerError(code, String(text[text.index(after: colon)...]))
    }
    throw FailRequested(message: text)
  }

  /// A plain error, so it reaches the caller as `unknown`.
  struct FailRequested: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
  }
}

/// Calls another function over the mesh and replies with its answer: the input is
/// `<function>:<payload>`.
///
/// For checking mesh calls between watchers in a real deployment.
public struct Relay: Handler {
  /// Creates the handler.
  public init() {}

  /// Sends the payload to the named function and returns its reply.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    let text = try request.requireText()
    guard let colon = text.firstIndex(of: ":") else {
      throw HandlerError.invalidArgument("expected <function>:<payload>, got \"\(text.prefix(64))\"")
    }
    let reply = try await context.mesh.call(String(text[..<colon]), text: String(text[text.index(after: colon)...]))
    return .text(reply)
  }
}
