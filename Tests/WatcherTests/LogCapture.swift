import Logging
import Synchronization

/// Records every log entry made through its loggers, for assertions.
final class LogCapture: Sendable {
  struct Entry: Sendable {
    var level: Logger.Level
    var message: String
    var metadata: Logger.Metadata
  }

  private let storage = Mutex<[Entry]>([])

  var entries: [Entry] { storage.withLock { $0 } }

  func logger(level: Logger.Level = .trace) -> Logger {
    var logger = Logger(label: "test") { _ in Handler(capture: self) }
    logger.logLevel = level
    return logger
  }

  fileprivate func append(_ entry: Entry) { storage.withLock { $0.append(entry) } }

  private struct Handler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
      get { metadata[key] }
      set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
      let merged = metadata.merging(event.metadata ?? [:]) { $1 }
      capture.append(Entry(level: event.level, message: "\(event.message)", metadata: merged))
    }
  }
}

extension Logger {
  /// A logger that writes nothing, for tests that do not look at logs.
  static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
}
