import FxWatcherMessages
import HandlerKit

extension Request {
  /// The request OpenFx's `pb.Request` describes.
  init(_ message: Pb_Request) {
    let info = message.info
    self.init(
      input: message.input,
      info: Info(
        functionName: info.functionName,
        timeout: info.timeout,
        runtime: info.runtime,
        limits: Resources(memory: info.limits.memory, cpu: info.limits.cpu, gpu: info.limits.gpu),
        trigger: Trigger(name: info.trigger.name, topic: info.trigger.topic, time: info.trigger.time)
      )
    )
  }
}

extension Grpc_Health_V1_HealthCheckResponse {
  init(serving: Bool) {
    self.init()
    status = serving ? .serving : .notServing
  }
}

/// The `grpc-timeout` header: at most 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
enum GRPCTimeout {
  /// The header's value for `timeout`, rounded up to the unit that keeps it within 8 digits
  /// (microseconds up to 99 s, then milliseconds, then seconds).
  static func header(for timeout: Duration) -> String {
    let nanoseconds = timeout.nanoseconds
    let microseconds = max(1, nanoseconds / 1000 + (nanoseconds % 1000 > 0 ? 1 : 0))
    if microseconds <= 99_999_999 { return "\(microseconds)u" }
    let milliseconds = (microseconds + 999) / 1000
    if milliseconds <= 99_999_999 { return "\(milliseconds)m" }
    return "\(min((milliseconds + 999) / 1000, 99_999_999))S"
  }

  static func parse(_ text: String) -> Duration? {
    guard let unit = text.last, text.count >= 2, text.count <= 9, let value = Int64(text.dropLast()), value >= 0
    else { return nil }
    switch unit {
    case "H": return .seconds(value * 3600)
    case "M": return .seconds(value * 60)
    case "S": return .seconds(value)
    case "m": return .milliseconds(value)
    case "u": return .microseconds(value)
    case "n": return .nanoseconds(value)
    default: return nil
    }
  }
}
