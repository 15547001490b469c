/// Exports handlers from a shared library that a prebuilt watcher loads at start
/// (`HANDLER_FILE`), the way OpenFx's Go watcher loads a plugin: one watcher image can host a
/// function compiled separately.
///
/// A handler library is a package whose dynamic library product depends on this package's
/// `HandlerKitShared` product (HandlerKit as a shared library) and exports one C function:
///
/// ```swift
/// import HandlerKit
///
/// @_cdecl("fxwatcher_handler_library")
/// public func handlerLibrary(_ handshake: UnsafeMutablePointer<UInt32>) -> UnsafeMutableRawPointer? {
///   HandlerLibrary.export(["greeter": { Greeter() }], defaultName: "greeter", handshake: handshake)
/// }
/// ```
///
/// `HANDLER_NAME` picks one of the exported handlers (the default one when unset). The
/// watcher refuses a library built against another ``interfaceVersion`` before running any of
/// its code beyond this function, and the library must be built with the watcher's Swift
/// version: both share the process's Swift runtime.
public enum HandlerLibrary {
  /// The name of the C function a handler library exports.
  public static let entryPointName = "fxwatcher_handler_library"

  /// The exported function's type: it reads the watcher's interface version from
  /// `handshake[0]`, writes the library's own to `handshake[1]`, and returns the exported
  /// handlers only when the two are the same.
  public typealias EntryPoint = @convention(c) (UnsafeMutablePointer<UInt32>) -> UnsafeMutableRawPointer?

  /// The version of what a library and the watcher share: HandlerKit's types and this
  /// handshake. It changes whenever a library built against the old one could not run safely;
  /// the value is compiled into each library.
  @_alwaysEmitIntoClient
  public static var interfaceVersion: UInt32 { 1 }

  /// Exports `factories` by name, `defaultName` being served when `HANDLER_NAME` is unset; call
  /// it from the library's `fxwatcher_handler_library` with the handshake passed in.
  ///
  /// A factory runs once, at the watcher's start, for the chosen handler only; what it throws
  /// stops the watcher with its message.
  @_alwaysEmitIntoClient
  public static func export(
    _ factories: [String: @Sendable () throws -> any Handler],
    defaultName: String,
    handshake: UnsafeMutablePointer<UInt32>
  ) -> UnsafeMutableRawPointer? {
    handshake[1] = interfaceVersion
    guard handshake[0] == interfaceVersion else { return nil }
    return Unmanaged.passRetained(HandlerLibraryExports(defaultName: defaultName, factories: factories)).toOpaque()
  }
}

/// The handlers a library exports, as the watcher receives them.
@usableFromInline
package final class HandlerLibraryExports: Sendable {
  /// The handler served when `HANDLER_NAME` is unset.
  package let defaultName: String
  /// Every exported handler's factory, by name.
  package let factories: [String: @Sendable () throws -> any Handler]

  @usableFromInline
  package init(defaultName: String, factories: [String: @Sendable () throws -> any Handler]) {
    self.defaultName = defaultName
    self.factories = factories
  }
}
