import Examples
import Foundation
import FxWatcherProto
import HandlerKit
import Testing
import Watcher
import WatcherTesting

/// The test kit as a function author uses it, on the example handlers.
@Suite("Test kit")
struct WatcherTestingTests {
  struct Greeter: Handler {
    func handle(_ request: Request, context: Context) async throws -> Output {
      .text("Hello, \(try request.requireText()) from \(context.functionName)")
    }
  }

  @Test func oneLineInProcess() async throws {
    #expect(try await Greeter().reply(to: "Ada") == "Hello, Ada from function")
    #expect(try await Echo().reply(to: Data([0, 255, 1])) == Data([0, 255, 1]))
  }

  @Test func failuresAreTheStatusACallerWouldGet() async {
    await #expect(throws: HandlerError(.invalidArgument, "bad input")) {
      try await Fail().reply(to: "invalidArgument:bad input")
    }
    await #expect(throws: HandlerError(.unknown, "boom")) { try await Fail().reply(to: "boom") }
    do throws(HandlerError) {
      _ = try await Sleep().reply(to: "5000", info: Info(timeout: "50ms"))
      Issue.record("a 5 s sleep finished within a 50 ms Info.Timeout")
    } catch {
      #expect(error.code == .deadlineExceeded)
    }
  }

  @Test func theWatchersLimitsApplyInProcess() async throws {
    var configuration = WatcherConfiguration.defaults
    configuration.maxMessageBytes = 4
    let tester = HandlerTester(Echo(), configuration: configuration, functionName: "echo")
    #expect(try await tester.call("1234") == "1234")
    await #expect(throws: HandlerError.self) { try await tester.call("12345") }
    #expect(try await tester.stream(Request("ab")).map(\.bytes) == [Data("ab".utf8)])
  }

  @Test func endToEndOverRealGRPC() async throws {
    try await withRunningWatcher(Greeter(), functionName: "greeter") { (watcher: RunningWatcher) async throws in
      #expect(watcher.port > 0 && watcher.meshPort > 0 && watcher.port != watcher.meshPort)
      #expect(FileManager.default.fileExists(atPath: watcher.lockFilePath))
      #expect(try await watcher.call("Ada") == "Hello, Ada from greeter")
      #expect(try await watcher.call(bytes: Data("Bo".utf8)) == Data("Hello, Bo from greeter".utf8))
      #expect(try await watcher.stream("Cy") == [Data("Hello, Cy from greeter".utf8)])
    }
  }

  @Test func endToEndFailuresAndTheLockAfterwards() async throws {
    let lock = try await withRunningWatcher(Fail()) { (watcher: RunningWatcher) async throws in
      await #expect(throws: HandlerError(.notFound, "no such thing")) { try await watcher.call("notFound:no such thing") }
      return watcher.lockFilePath
    }
    #expect(!FileManager.default.fileExists(atPath: lock), "the lock is removed at shutdown")
    try await withRunningWatcher(Sleep()) { watcher in
      do throws(HandlerError) {
        _ = try await watcher.call("5000", timeout: .milliseconds(100))
        Issue.record("a 5 s sleep finished within a 100 ms deadline")
      } catch {
        #expect(error.code == .deadlineExceeded)
      }
    }
  }
}
