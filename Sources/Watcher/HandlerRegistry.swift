import HandlerKit

/// The compiled-in handlers a watcher binary can serve, chosen by `HANDLER_NAME`.
public struct HandlerRegistry: Sendable {
  /// Makes a handler; called once, at start-up, for the chosen name only.
  public typealias Factory = @Sendable () throws -> any Handler

  /// OpenFx's own default `HANDLER_NAME`; it selects ``defaultName``, so OpenFx images that
  /// set `HANDLER_NAME=Handler` keep working.
  public static let openFxDefaultName = "Handler"

  /// The handler served when no name is given.
  public let defaultName: String
  private let factories: [String: Factory]

  /// Creates a registry; `defaultName` must be one of `factories`' keys.
  public init(defaultName: String, factories: [String: Factory]) {
    precondition(factories[defaultName] != nil, "the default handler \(defaultName) is not registered")
    self.defaultName = defaultName
    self.factories = factories
  }

  /// The registered names, sorted.
  public var names: [String] { factories.keys.sorted() }

  /// The handler `name` selects (the default for `nil` or ``openFxDefaultName``), with its name.
  ///
  /// - Throws: ``WatcherError`` `unknownHandler` naming `name` and listing the known ones, or
  ///   `handlerUnavailable` with the factory's error.
  public func handler(named name: String?) throws -> (name: String, handler: any Handler) {
    let chosen = name.flatMap { $0 == Self.openFxDefaultName ? nil : $0 } ?? defaultName
    guard let factory = factories[chosen] else {
      throw WatcherError(
        .unknownHandler,
        "unknown handler \"\(chosen)\" (HANDLER_NAME); known handlers: \(names.joined(separator: ", "))"
      )
    }
    do {
      return (chosen, try factory())
    } catch {
      throw WatcherError(.handlerUnavailable, "the handler \"\(chosen)\" could not be created: \(error)")
    }
  }
}
