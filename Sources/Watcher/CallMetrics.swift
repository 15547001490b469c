#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CoreMetrics
import Prometheus
import Synchronization

/// The watcher's metrics, in Prometheus text format: calls by method and status, their
/// duration, the calls in flight and the process's memory.
///
/// Names: `fxwatcher_calls_total{method,status}`, `fxwatcher_call_duration_seconds{method}`
/// (histogram), `fxwatcher_calls_in_flight`, `process_resident_memory_bytes`.
final class CallMetrics: Sendable {
  static let callsTotal = "fxwatcher_calls_total"
  static let callDuration = "fxwatcher_call_duration_seconds"
  static let callsInFlight = "fxwatcher_calls_in_flight"
  static let residentMemory = "process_resident_memory_bytes"

  /// Histogram buckets from 100 µs to 60 s.
  static let durationBuckets: [Duration] = [
    .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
    .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
    .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    .seconds(30), .seconds(60),
  ]

  private let registry: PrometheusCollectorRegistry
  private let factory: PrometheusMetricsFactory
  private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
  private let timers = Mutex<[String: CoreMetrics.Timer]>([:])
  private let inFlight: CoreMetrics.Meter
  private let memory: CoreMetrics.Meter
  private let callsInFlight: @Sendable () -> Int

  /// Creates the metrics; `callsInFlight` is read at each scrape.
  init(callsInFlight: @escaping @Sendable () -> Int) {
    self.callsInFlight = callsInFlight
    registry = PrometheusCollectorRegistry()
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.durationHistogramBuckets[Self.callDuration] = Self.durationBuckets
    self.factory = factory
    inFlight = CoreMetrics.Meter(label: Self.callsInFlight, dimensions: [], factory: factory)
    memory = CoreMetrics.Meter(label: Self.residentMemory, dimensions: [], factory: factory)
    inFlight.set(0)
  }

  /// Records a finished call (or one refused before its handler ran).
  func record(method: String, status: String, duration: Duration) {
    let key = method + "\u{0}" + status
    let counter = counters.withLock { counters in
      if let counter = counters[key] { return counter }
      let counter = CoreMetrics.Counter(label: Self.callsTotal, dimensions: [("method", method), ("status", status)], factory: factory)
      counters[key] = counter
      return counter
    }
    counter.increment()
    let timer = timers.withLock { timers in
      if let timer = timers[method] { return timer }
      let timer = CoreMetrics.Timer(label: Self.callDuration, dimensions: [("method", method)], factory: factory)
      timers[method] = timer
      return timer
    }
    timer.recordNanoseconds(duration.nanoseconds)
  }

  /// The exposition text, with the in-flight and memory gauges read now.
  func exposition() -> [UInt8] {
    inFlight.set(callsInFlight())
    if let bytes = Self.residentMemoryBytes() { memory.set(bytes) }
    return registry.emitToBuffer()
  }

  /// The resident set size from `/proc/self/statm`, or `nil` where there is none.
  static func residentMemoryBytes() -> Int? {
    let descriptor = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
    guard count > 0 else { return nil }
    let fields = buffer[..<count].split(separator: UInt8(ascii: " "))
    guard fields.count >= 2, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
    return pages * sysconf(Int32(_SC_PAGESIZE))
  }
}

extension Duration {
  /// The duration in whole nanoseconds (saturating).
  var nanoseconds: Int64 {
    let (seconds, attoseconds) = components
    let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    return overflow ? .max : scaled + attoseconds / 1_000_000_000
  }
}
