#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The health lock file: its existence tells the container healthcheck (`[ -e /tmp/.lock ]`)
/// that every port accepts calls.
struct LockFile: Sendable {
  /// Where the file lives.
  let path: String

  /// The file's permission bits, as OpenFx's watchers use.
  static let mode: mode_t = 0o660

  /// Creates the (empty) file with mode 0660 whatever the umask.
  func create() throws(WatcherError) {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, Self.mode)
    guard descriptor >= 0 else {
      throw WatcherError(.lockFile, "cannot write the lock file \(path): \(Self.lastErrorText())")
    }
    defer { close(descriptor) }
    guard fchmod(descriptor, Self.mode) == 0 else {
      throw WatcherError(.lockFile, "cannot set mode 0660 on the lock file \(path): \(Self.lastErrorText())")
    }
  }

  /// Removes the file; a file that is already gone is fine.
  func remove() throws(WatcherError) {
    guard unlink(path) == 0 || errno == ENOENT else {
      throw WatcherError(.lockFile, "cannot remove the lock file \(path): \(Self.lastErrorText())")
    }
  }

  private static func lastErrorText() -> String {
    String(cString: strerror(errno))
  }
}
