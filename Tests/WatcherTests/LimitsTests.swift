import Foundation
import HandlerKit
import Logging
import Synchronization
import Testing

@testable import Watcher

@Suite("Timeouts, limits and drain in the pipeline", .timeLimit(.minutes(1)))
struct LimitsTests {
  func invoker(
    _ handler: any Handler,
    execTimeout: Duration? = nil,
    maxMessageBytes: Int = .max,
    gate: InvocationGate = InvocationGate(limit: 0)
  ) -> Invoker {
    Invoker(
      handler: handler, functionName: "fn", logger: .quiet, execTimeout: execTimeout,
      maxMessageBytes: maxMessageBytes, gate: gate)
  }

  /// A time limit as "source duration", to compare.
  func named(_ limit: TimeLimit?) -> String? { limit.map { "\($0.source) \($0.duration)" } }
  func named(_ duration: Duration, _ source: String) -> String? { "\(source) \(duration)" }

  @Test func theShortestOfInfoTimeoutCallerDeadlineAndExecTimeoutApplies() throws {
    let pipeline = invoker(Echoing(), execTimeout: .seconds(60))
    #expect(try named(pipeline.timeLimit(infoTimeout: "", callerTimeout: nil)) == named(.seconds(60), "EXEC_TIMEOUT"))
    #expect(try named(pipeline.timeLimit(infoTimeout: "30s", callerTimeout: nil)) == named(.seconds(30), "Info.Timeout"))
    #expect(try named(pipeline.timeLimit(infoTimeout: "30", callerTimeout: .seconds(2))) == named(.seconds(2), "the caller's deadline"))
    #expect(try named(invoker(Echoing()).timeLimit(infoTimeout: "1m30s", callerTimeout: .seconds(120))) == named(.seconds(90), "Info.Timeout"))
    #expect(try named(pipeline.timeLimit(infoTimeout: "0", callerTimeout: nil)) == named(.seconds(60), "EXEC_TIMEOUT"))
    #expect(try invoker(Echoing()).timeLimit(infoTimeout: "", callerTimeout: nil) == nil)
    // On a tie the caller's own settings are named: Info.Timeout, then its deadline.
    #expect(try named(pipeline.timeLimit(infoTimeout: "60s", callerTimeout: .seconds(60))) == named(.seconds(60), "Info.Timeout"))
    #expect(try named(pipeline.timeLimit(infoTimeout: "", callerTimeout: .seconds(60))) == named(.seconds(60), "the caller's deadline"))
  }

  @Test(arguments: ["soon", "30 s", "-1s", "1e3"])
  func aMalformedInfoTimeoutIsInvalidArgument(timeout: String) async {
    let error = await #expect(throws: HandlerError.self) {
      _ = try await invoker(Echoing()).invoke(Request("x", info: Info(timeout: timeout)), requestID: nil, method: "Call")
    }
    #expect(error?.code == .invalidArgument)
    #expect(error?.message.contains("Info.Timeout") == true)
  }

  @Test func theHandlerSeesItsDeadline() async throws {
    let remaining = ClosureHandler { _, context in .text("\(context.remainingTime.map { $0 <= .seconds(5) && $0 > .seconds(4) } ?? false)") }
    let output = try await invoker(remaining).invoke(Request("", info: Info(timeout: "5s")), requestID: nil, method: "Call")
    #expect(output.text == "true")
  }

  @Test func anExpiredDeadlineAnswersAtOnceEvenIfTheHandlerIgnoresCancellation() async throws {
    let stubborn = Stubborn(duration: .milliseconds(1500))
    let gate = InvocationGate(limit: 0)
    let start = ContinuousClock.now
    let error = await #expect(throws: HandlerError.self) {
      _ = try await invoker(stubborn, gate: gate).invoke(Request("", info: Info(timeout: "100ms")), requestID: nil, method: "Call")
    }
    let elapsed = ContinuousClock.now - start
    #expect(error?.code == .deadlineExceeded)
    #expect(error?.message.contains("Info.Timeout") == true)
    #expect(elapsed >= .milliseconds(100) && elapsed < .milliseconds(1000))
    #expect(gate.callsInFlight == 1, "the handler still runs, so its slot stays taken")
    try await Task.sleep(for: .milliseconds(2000))
    #expect(gate.callsInFlight == 0)
  }

  @Test func aCooperativeHandlerIsCancelledAtTheDeadline() async throws {
    let cancelled = Mutex(false)
    let handler = ClosureHandler { _, _ in
      do {
        try await Task.sleep(for: .seconds(30))
      } catch {
        cancelled.withLock { $0 = true }
        throw error
      }
      return "late"
    }
    _ = try? await invoker(handler, execTimeout: .milliseconds(50)).invoke(Request(), requestID: nil, method: "Call")
    try await Task.sleep(for: .milliseconds(200))
    #expect(cancelled.withLock { $0 })
  }

  @Test func callsOverTheInFlightLimitAreRefusedAtOnce() async throws {
    let gate = InvocationGate(limit: 2)
    let pipeline = invoker(Stubborn(duration: .seconds(1)), gate: gate)
    async let first = pipeline.invoke(Request(), requestID: nil, method: "Call")
    async let second = pipeline.invoke(Request(), requestID: nil, method: "Call")
    // Both calls in (however busy the machine running the tests), with most of a second to go.
    let admitted = ContinuousClock.now + .seconds(5)
    while gate.callsInFlight < 2 && ContinuousClock.now < admitted { try await Task.sleep(for: .milliseconds(1)) }
    #expect(gate.callsInFlight == 2)
    let start = ContinuousClock.now
    let error = await #expect(throws: HandlerError.self) {
      _ = try await pipeline.invoke(Request(), requestID: nil, method: "Call")
    }
    // Refused, not queued behind the calls in flight.
    #expect(ContinuousClock.now - start < .milliseconds(500))
    #expect(error?.code == .resourceExhausted)
    #expect(error?.message.contains("MAX_INFLIGHT") == true)
    _ = try await (first, second)
    #expect(gate.callsInFlight == 0)
    _ = try await pipeline.invoke(Request(), requestID: nil, method: "Call")
  }

  @Test func aDrainingWatcherRefusesNewCallsAsUnavailable() async {
    let gate = InvocationGate(limit: 0)
    gate.beginDraining()
    let error = await #expect(throws: HandlerError.self) {
      _ = try await invoker(Echoing(), gate: gate).invoke(Request("x"), requestID: nil, method: "Call")
    }
    #expect(error?.code == .unavailable)
  }

  @Test func inputsAndOutputsOverTheSizeLimitAreResourceExhausted() async throws {
    let pipeline = invoker(ClosureHandler { r, _ in .bytes(r.input + r.input) }, maxMessageBytes: 10)
    #expect(try await pipeline.invoke(Request("12345"), requestID: nil, method: "Call").text == "1234512345")
    let input = await #expect(throws: HandlerError.self) {
      _ = try await pipeline.invoke(Request("12345678901"), requestID: nil, method: "Call")
    }
    #expect(input?.code == .resourceExhausted && input?.message.contains("input (11 bytes)") == true)
    let output = await #expect(throws: HandlerError.self) {
      _ = try await pipeline.invoke(Request("123456"), requestID: nil, method: "Call")
    }
    #expect(output?.code == .resourceExhausted && output?.message.contains("output (12 bytes)") == true)
  }

  @Test func streamingHandlersWriteEachOutputAndJoinThemForSingleReplies() async throws {
    let countdown = Countdown()
    let written = Mutex<[String]>([])
    try await invoker(countdown).invokeStreaming(Request("3"), requestID: nil, method: "CallStream") { output in
      written.withLock { $0.append(output.text ?? "?") }
    }
    #expect(written.withLock { $0 } == ["3\n", "2\n", "1\n"])
    #expect(try await invoker(countdown).invoke(Request("2"), requestID: nil, method: "Call").text == "2\n1\n")
    let single = Mutex<[String]>([])
    try await invoker(Echoing()).invokeStreaming(Request("once"), requestID: nil, method: "CallStream") { output in
      single.withLock { $0.append(output.text ?? "?") }
    }
    #expect(single.withLock { $0 } == ["once"])
  }
}

struct Echoing: Handler {
  func handle(_ request: Request, context: Context) async throws -> Output { .bytes(request.input) }
}

/// Takes its time, deaf to cancellation (it still yields its thread while it waits).
struct Stubborn: Handler {
  let duration: Duration
  func handle(_ request: Request, context: Context) async throws -> Output {
    let end = ContinuousClock.now + duration
    while ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(5)) }
    return "finally"
  }
}

struct Countdown: StreamingHandler {
  func handle(_ request: Request, context: Context, writer: OutputWriter) async throws {
    for n in (1...(Int(request.text ?? "") ?? 1)).reversed() {
      try await writer.write(.text("\(n)\n"))
    }
  }
}
