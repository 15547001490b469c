/// Why the watcher cannot start or keep running; each case is a clear message for the operator.
public struct WatcherError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The kind of failure.
  public enum Code: String, Sendable, Hashable {
    /// A setting has a value the watcher cannot use.
    case invalidConfiguration
    /// `HANDLER_NAME` names no compiled-in handler.
    case unknownHandler
    /// The handler library `HANDLER_FILE` names cannot be loaded.
    case handlerFile
    /// The chosen handler could not be created (its factory threw).
    case handlerUnavailable
    /// A port could not be bound.
    case bindFailed
    /// The health lock file could not be written.
    case lockFile
    /// A server stopped although no shutdown was asked for.
    case serverStopped
  }

  /// The kind of failure.
  public var code: Code
  /// What went wrong, for a person.
  public var message: String

  /// Creates an error.
  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }

  /// The message alone: it is what the operator sees.
  public var description: String { message }
}
