#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A handler of JSON documents: the input is decoded into `Input`, the `Result` encoded back.
///
/// Input that does not decode is refused with `invalidArgument` before ``handle(_:context:)``
/// runs.
public protocol CodableHandler: Handler {
  /// The decoded input.
  associatedtype Input: Decodable
  /// What the handler returns; it is sent as a JSON document.
  associatedtype Result: Encodable

  /// Serves one call whose input decoded as `input`.
  func handle(_ input: Input, context: Context) async throws -> Result
}

extension CodableHandler {
  /// Decodes the input as JSON, calls ``handle(_:context:)``, and encodes its result as JSON.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    let input = try request.decode(Input.self)
    let result = try await handle(input, context: context)
    do {
      return .bytes(try JSONEncoder().encode(result))
    } catch {
      throw HandlerError(.internalError, "cannot encode \(Result.self) as JSON: \(error)")
    }
  }
}

/// A ``CodableHandler`` made of a closure.
public struct CodableClosureHandler<Input: Decodable, Result: Encodable>: CodableHandler {
  private let body: @Sendable (Input, Context) async throws -> Result

  /// Creates a handler that decodes `Input`, runs `body` and encodes its `Result`.
  public init(_ body: @escaping @Sendable (Input, Context) async throws -> Result) {
    self.body = body
  }

  /// Runs the closure.
  public func handle(_ input: Input, context: Context) async throws -> Result {
    try await body(input, context)
  }
}
