#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Where a ``StreamingHandler`` writes its outputs; each write reaches the caller in order.
public struct OutputWriter: Sendable {
  private let body: @Sendable (Output) async throws -> Void

  /// Creates a writer that hands each output to `body` (the watcher's, or a test's).
  public init(_ body: @escaping @Sendable (Output) async throws -> Void) {
    self.body = body
  }

  /// Sends one output; it throws when the caller has gone or a limit is hit.
  public func write(_ output: Output) async throws {
    try await body(output)
  }
}

/// A handler that answers one request with a sequence of outputs, sent as they are written
/// (on `CallStream`).
///
/// Called through a single-reply method (`Call`, `CallBytes`, `Calls`, `Invoke`), the outputs are
/// joined into one: concatenated text when all are text, else concatenated bytes.
///
/// ```swift
/// struct Countdown: StreamingHandler {
///   func handle(_ request: Request, context: Context, writer: OutputWriter) async throws {
///     for n in (1...3).reversed() { try await writer.write(.text("\(n)\n")) }
///   }
/// }
/// ```
public protocol StreamingHandler: Handler {
  /// Serves one call by writing outputs to `writer`.
  func handle(_ request: Request, context: Context, writer: OutputWriter) async throws
}

extension StreamingHandler {
  /// Runs the streaming handler and joins everything it wrote into one output.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    let written = Mutex<[Output]>([])
    try await handle(request, context: context, writer: OutputWriter { output in written.withLock { $0.append(output) } })
    return Output(joining: written.withLock { $0 })
  }
}

extension Output {
  /// The outputs one after another: text when every part is text, else bytes.
  public init(joining parts: [Output]) {
    var text = ""
    var allText = true
    for part in parts {
      guard case .text(let piece) = part.storage else {
        allText = false
        break
      }
      text += piece
    }
    if allText {
      self.init(text)
    } else {
      self.init(bytes: parts.reduce(into: Data()) { $0.append($1.bytes) })
    }
  }
}
