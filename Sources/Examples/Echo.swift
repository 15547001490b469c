import HandlerKit

/// Returns its input unchanged: the default handler, and the function the seed's MQTT example calls.
public struct Echo: Handler {
  /// Creates the handler.
  public init() {}

  /// The input, byte for byte.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    .bytes(request.input)
  }
}
