import HandlerKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension HandlerRegistry {
  /// The handlers a shared library exports (`HANDLER_FILE`; see ``HandlerKit/HandlerLibrary``).
  ///
  /// The library is loaded into this process for good. It must have been built against this
  /// watcher's HandlerKit interface version and Swift version, and this binary must share its
  /// HandlerKit and Swift runtime with it: built without `--static-swift-stdlib` and linked with
  /// `-Xlinker --export-dynamic`, as `fxwatcher` is.
  ///
  /// - Throws: ``WatcherError`` `handlerFile`, saying what is wrong with the file and what to do.
  public init(libraryAt path: String) throws(WatcherError) {
    func refuse(_ why: String) -> WatcherError {
      WatcherError(.handlerFile, "cannot load the handler library \(path) (HANDLER_FILE): \(why)")
    }
    var status = stat()
    guard stat(path, &status) == 0 else {
      throw refuse(String(cString: strerror(errno)))
    }
    guard status.st_mode & S_IFMT == S_IFREG else {
      throw refuse("not a regular file")
    }
    guard Self.swiftRuntimeIsShared else {
      throw refuse(
        "this watcher has the Swift runtime linked in (built with --static-swift-stdlib), so it cannot share "
          + "it with a library; use a watcher built with the shared runtime (Dockerfile.swift-runtime "
          + "--build-arg SWIFT_STDLIB=--no-static-swift-stdlib)")
    }
    guard let library = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
      throw refuse("not a loadable shared library for this machine: \(Self.lastLoaderError)")
    }
    guard let symbol = dlsym(library, HandlerLibrary.entryPointName) else {
      throw refuse(
        "not a handler library: it exports no \(HandlerLibrary.entryPointName) function (see HandlerLibrary in HandlerKit)")
    }
    let entryPoint = unsafeBitCast(symbol, to: HandlerLibrary.EntryPoint.self)
    var handshake: [UInt32] = [HandlerLibrary.interfaceVersion, 0]
    let exported = handshake.withUnsafeMutableBufferPointer { entryPoint($0.baseAddress!) }
    guard handshake[1] == HandlerLibrary.interfaceVersion, let exported else {
      throw refuse(
        "it was built against HandlerKit interface version \(handshake[1]), and this watcher has version "
          + "\(HandlerLibrary.interfaceVersion): rebuild it against this watcher's HandlerKit")
    }
    guard let exports = Unmanaged<AnyObject>.fromOpaque(exported).takeRetainedValue() as? HandlerLibraryExports else {
      throw refuse(
        "its HandlerKit types are not this watcher's: the watcher binary must be linked with "
          + "-Xlinker --export-dynamic so the library uses its HandlerKit")
    }
    guard !exports.factories.isEmpty else {
      throw refuse("it exports no handlers")
    }
    guard exports.factories[exports.defaultName] != nil else {
      throw refuse(
        "its default handler \"\(exports.defaultName)\" is not among those it exports: "
          + exports.factories.keys.sorted().joined(separator: ", "))
    }
    self.init(defaultName: exports.defaultName, factories: exports.factories)
  }

  /// Whether this process uses the Swift runtime as a shared library (one a loaded library can share).
  private static var swiftRuntimeIsShared: Bool {
    guard let runtime = dlopen("libswiftCore.so", RTLD_NOLOAD | RTLD_LAZY) else { return false }
    dlclose(runtime)
    return true
  }

  private static var lastLoaderError: String {
    dlerror().map { String(cString: $0) } ?? "unknown error"
  }
}
