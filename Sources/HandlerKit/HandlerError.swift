/// An error a handler throws to choose the status its caller sees.
///
/// Each ``Code`` maps to the gRPC status of the same name. Any other error a handler throws
/// reaches the caller as ``Code/unknown`` with the error's description as the message,
/// unless it conforms to ``HandlerErrorConvertible``.
public struct HandlerError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The failure's kind; each case is the gRPC status code of the same name.
  public enum Code: String, Sendable, Hashable, CaseIterable {
    case cancelled
    case unknown
    case invalidArgument
    case deadlineExceeded
    case notFound
    case alreadyExists
    case permissionDenied
    case resourceExhausted
    case failedPrecondition
    case aborted
    case outOfRange
    case unimplemented
    case internalError
    case unavailable
    case dataLoss
    case unauthenticated
  }

  /// The failure's kind.
  public var code: Code
  /// A message for the caller; it travels as the gRPC status message.
  public var message: String

  /// Creates an error with a code and a message for the caller.
  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  /// `"<code>: <message>"`.
  public var description: String { "\(code.rawValue): \(message)" }

  /// The input is malformed: the caller must change it.
  public static func invalidArgument(_ message: String) -> HandlerError {
    HandlerError(.invalidArgument, message)
  }

  /// Something the call names does not exist.
  public static func notFound(_ message: String) -> HandlerError {
    HandlerError(.notFound, message)
  }

  /// A dependency of the handler is down; the caller may retry.
  public static func unavailable(_ message: String) -> HandlerError {
    HandlerError(.unavailable, message)
  }

  /// The handler broke one of its own invariants.
  public static func internalError(_ message: String) -> HandlerError {
    HandlerError(.internalError, message)
  }
}

/// An error type that chooses its own ``HandlerError`` (and so its gRPC status).
public protocol HandlerErrorConvertible: Error {
  /// The status and message the caller sees when this error is thrown.
  var handlerError: HandlerError { get }
}

extension HandlerError {
  /// Any error as the caller will see it: ``HandlerError`` as is, ``HandlerErrorConvertible``
  /// through its conversion, cancellation as ``Code/cancelled``, anything else as ``Code/unknown``
  /// with the error's description.
  public init(converting error: any Error) {
    switch error {
    case let error as HandlerError:
      self = error
    case let error as any HandlerErrorConvertible:
      self = error.handlerError
    case is CancellationError:
      self.init(.cancelled, "the call was cancelled")
    default:
      self.init(.unknown, String(describing: error))
    }
  }
}
