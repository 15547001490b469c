import HandlerKit
import Testing
import WatcherTesting

@testable import Function

@Test func greets() async throws {
  #expect(try await Handler().reply(to: "OpenFx") == "Hello, OpenFx")
}

@Test func refusesEmptyInput() async {
  await #expect(throws: HandlerError(.invalidArgument, "say something")) { try await Handler().reply(to: "") }
}

@Test func answersOverGRPC() async throws {
  try await withRunningWatcher(Handler()) { (watcher: RunningWatcher) async throws in
    #expect(try await watcher.call("gRPC") == "Hello, gRPC")
  }
}
