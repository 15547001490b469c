import Foundation
import HandlerKit
import Testing

@testable import Watcher

@Suite("Metrics")
struct CallMetricsTests {
  @Test func countsCallsByMethodAndStatusWithDurationsInFlightAndMemory() async throws {
    let gate = InvocationGate(limit: 0)
    let metrics = CallMetrics(callsInFlight: { gate.callsInFlight })
    let invoker = Invoker(
      handler: ClosureHandler { r, _ in
        if r.text == "fail" { throw HandlerError.notFound("no") }
        return .bytes(r.input)
      }, functionName: "fn", logger: .quiet, gate: gate, metrics: metrics)
    for _ in 0..<3 { _ = try await invoker.invoke(Request("ok"), requestID: nil, method: "Call") }
    _ = try? await invoker.invoke(Request("fail"), requestID: nil, method: "Call")
    _ = try? await invoker.invokeForText(Request(input: Data([0xFF])), requestID: nil, method: "Call")
    _ = try await invoker.invoke(Request("ok"), requestID: nil, method: "CallBytes")

    let text = String(decoding: metrics.exposition(), as: UTF8.self)
    #expect(text.contains(#"fxwatcher_calls_total{method="Call",status="ok"} 3"#))
    #expect(text.contains(#"fxwatcher_calls_total{method="Call",status="notFound"} 1"#))
    #expect(text.contains(#"fxwatcher_calls_total{method="Call",status="internalError"} 1"#))
    #expect(text.contains(#"fxwatcher_calls_total{method="CallBytes",status="ok"} 1"#))
    #expect(text.contains(#"fxwatcher_call_duration_seconds_count{method="Call"} 5"#))
    #expect(text.contains(#"fxwatcher_call_duration_seconds_bucket{method="Call",le="+Inf"} 5"#))
    #expect(text.contains("fxwatcher_calls_in_flight 0"))
    let memory = try #require(text.split(separator: "\n").first { $0.hasPrefix("process_resident_memory_bytes ") })
    #expect((Double(memory.split(separator: " ")[1]) ?? 0) > 1_000_000)
  }
}
