import Foundation
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import Watcher

/// Deadlines kept by the HTTP/2 transport: the stream answers DEADLINE_EXCEEDED at the deadline
/// and cancels the call's task, whatever the handler does, and the handler keeps its MAX_INFLIGHT
/// slot until it really ends.
@Suite("Deadlines over the transport", .timeLimit(.minutes(1)))
struct TransportDeadlineTests {
  func request(_ text: String, timeout: String = "") -> Pb_Request {
    var request = Pb_Request()
    request.input = Data(text.utf8)
    request.info.timeout = timeout
    return request
  }

  /// How long "slow" takes: far longer than the deadlines, so an answer well before it came
  /// from the deadline, however busy the machine running the tests.
  static let slowDuration = Duration.seconds(4)

  /// "slow" waits `slowDuration` for something that ignores cancellation (an unstructured task,
  /// which the call's cancellation does not reach); anything else is echoed at once.
  static let stubbornWhenSlow = ClosureHandler { r, _ in
    if r.text == "slow" {
      await Task { try? await Task.sleep(for: slowDuration) }.value
    }
    return .bytes(r.input)
  }

  @Test func aHandlerIgnoringCancellationIsAnsweredAtTheDeadlineAndKeepsItsSlot() async throws {
    let gate = InvocationGate(limit: 1)
    try await withServedClient(Self.stubbornWhenSlow, gate: gate) { client in
      let watcher = Pb_FxWatcher.Client(wrapping: client)
      #expect(try await watcher.call(request("connected")).output == "connected")
      let start = ContinuousClock.now
      let error = await #expect(throws: RPCError.self) { _ = try await watcher.call(request("slow", timeout: "100ms")) }
      let elapsed = ContinuousClock.now - start
      #expect(error?.code == .deadlineExceeded)
      #expect(error?.message.contains("Info.Timeout 0.1 seconds") == true, "\(error?.message ?? "")")
      #expect(elapsed >= .milliseconds(100) && elapsed < Self.slowDuration - .seconds(1), "\(elapsed)")
      // The handler still runs: its slot is taken, so the next call is refused.
      #expect(gate.callsInFlight == 1)
      let refused = await #expect(throws: RPCError.self) { _ = try await watcher.call(request("quick")) }
      #expect(refused?.code == .resourceExhausted)
      let freed = ContinuousClock.now + Self.slowDuration + .seconds(5)
      while gate.callsInFlight > 0 && ContinuousClock.now < freed { try await Task.sleep(for: .milliseconds(10)) }
      #expect(try await watcher.call(request("quick")).output == "quick")
    }
  }

  @Test func aStreamIdleBetweenItsMessagesIsNotEndedByAnEarlierMessagesDeadline() async throws {
    try await withServedClient(Self.stubbornWhenSlow, execTimeout: .milliseconds(300)) { client in
      let outputs = try await Pb_FxWatcher.Client(wrapping: client).calls(
        requestProducer: { writer in
          try await writer.write(request("first"))
          try await Task.sleep(for: .milliseconds(700))  // longer than EXEC_TIMEOUT, with nothing running
          try await writer.write(request("second"))
        },
        onResponse: { response in
          try await response.messages.reduce(into: [String]()) { $0.append(String(decoding: $1.output, as: UTF8.self)) }
        })
      #expect(outputs == ["first", "second"])
    }
  }

  @Test func aStreamMessagePastItsDeadlineEndsTheStream() async throws {
    try await withServedClient(Self.stubbornWhenSlow, execTimeout: .milliseconds(200)) { client in
      let start = ContinuousClock.now
      let received = Counter()
      let error = await #expect(throws: RPCError.self) {
        try await Pb_FxWatcher.Client(wrapping: client).calls(
          requestProducer: { writer in
            for text in ["one", "slow", "never"] { try await writer.write(request(text)) }
          },
          onResponse: { response in for try await _ in response.messages { received.add() } })
      }
      #expect(error?.code == .deadlineExceeded)
      #expect(error?.message.contains("EXEC_TIMEOUT") == true, "\(error?.message ?? "")")
      #expect(received.value == 1)
      #expect(ContinuousClock.now - start < Self.slowDuration - .seconds(1))
    }
  }
}

@Suite("DeadlineWatch", .timeLimit(.minutes(1)))
struct DeadlineWatchTests {
  /// The names of the calls told, in order.
  final class Told: Sendable {
    private let names = Mutex<[String]>([])
    func append(_ name: String) { names.withLock { $0.append(name) } }
    var all: [String] { names.withLock { $0 } }
  }

  /// A watched call that notes when it is told.
  final class Recorder: DeadlineWatched, Sendable {
    let name: String
    let told: Told
    init(_ name: String, told: Told) {
      self.name = name
      self.told = told
    }
    func deadlinePassed() { told.append(name) }
  }

  @Test func tellsEachCallAtItsDeadlineInOrderAndNotTheForgottenOnes() async throws {
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    let told = Told()
    let late = Recorder("late", told: told), early = Recorder("early", told: told)
    let ended = Recorder("ended", told: told)
    try await loop.submit {
      // Kept alive by its timer until the last deadline.
      let watch = DeadlineWatch(eventLoop: loop)
      let now = ContinuousClock.now
      watch.watch(late, until: now + .milliseconds(300))
      watch.watch(early, until: now + .milliseconds(100))  // earlier than the armed timer
      watch.watch(ended, until: now + .milliseconds(200))
      watch.forget(ended)  // the call ended first
    }.get()
    let done = ContinuousClock.now + .seconds(5)
    while told.all.count < 2 && ContinuousClock.now < done { try await Task.sleep(for: .milliseconds(10)) }
    try await Task.sleep(for: .milliseconds(100))
    #expect(told.all == ["early", "late"])
  }

  @Test func tellsCallsItFindsPassedTogetherEarliestFirst() async throws {
    // A loop of its own: this test holds it up, which would delay the other tests' calls.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let told = Told()
    let names = (0..<8).map { "call \($0)" }
    let recorders = names.map { Recorder($0, told: told) }
    try await loop.submit {
      let watch = DeadlineWatch(eventLoop: loop)
      let now = ContinuousClock.now
      for index in [5, 2, 7, 0, 3, 6, 1, 4] {
        watch.watch(recorders[index], until: now + .milliseconds(20 + 10 * index))
      }
      // The loop is busy past every deadline: the timer fires late and finds all eight passed.
      Thread.sleep(forTimeInterval: 0.2)
    }.get()
    let done = ContinuousClock.now + .seconds(5)
    while told.all.count < names.count && ContinuousClock.now < done { try await Task.sleep(for: .milliseconds(10)) }
    #expect(told.all == names)
    try await group.shutdownGracefully()
  }
}

/// A count shared with handlers (and the tests' other suites).
final class Counter: Sendable {
  private let count = Mutex(0)
  func add() { count.withLock { $0 += 1 } }
  var value: Int { count.withLock { $0 } }
}
