/// A function hosted by the watcher: one call in, one output out.
///
/// The watcher calls `handle` concurrently for concurrent calls, so a handler is `Sendable`
/// and keeps shared state in actors or other safe places. A thrown error becomes the caller's
/// gRPC status (see ``HandlerError``); the watcher keeps serving.
///
/// ```swift
/// struct Greeter: Handler {
///   func handle(_ request: Request, context: Context) async throws -> Output {
///     .text("Hello, \(request.text ?? "stranger")")
///   }
/// }
/// ```
public protocol Handler: Sendable {
  /// Serves one call.
  func handle(_ request: Request, context: Context) async throws -> Output
}

/// A handler made of a closure: for tests and tiny functions.
public struct ClosureHandler: Handler {
  private let body: @Sendable (Request, Context) async throws -> Output

  /// Creates a handler that runs `body` for each call.
  public init(_ body: @escaping @Sendable (Request, Context) async throws -> Output) {
    self.body = body
  }

  /// A handler made of a text-to-text closure; input that is not UTF-8 is refused with
  /// `invalidArgument`.
  public static func text(_ body: @escaping @Sendable (String, Context) async throws -> String) -> ClosureHandler {
    ClosureHandler { request, context in
      .text(try await body(try request.requireText(), context))
    }
  }

  /// Runs the closure.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    try await body(request, context)
  }
}

/// A handler of text: the input must be valid UTF-8 and the output is text.
public protocol TextHandler: Handler {
  /// Serves one call whose input is `text`.
  func handle(_ text: String, context: Context) async throws -> String
}

extension TextHandler {
  /// Decodes the input as UTF-8 (refusing it with `invalidArgument` otherwise) and calls
  /// ``handle(_:context:)-(String,_)``.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    .text(try await handle(try request.requireText(), context: context))
  }
}

extension Request {
  /// The input as text, or an `invalidArgument` error when it is not valid UTF-8.
  public func requireText() throws(HandlerError) -> String {
    guard let text else {
      throw HandlerError(.invalidArgument, "input is not valid UTF-8 (\(input.count) bytes)")
    }
    return text
  }
}
