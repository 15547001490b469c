import Foundation
import HandlerKit
import Testing

@testable import Watcher

@Suite("Handler registry")
struct HandlerRegistryTests {
  let registry = HandlerRegistry(
    defaultName: "echo",
    factories: ["echo": { ClosureHandler { r, _ in .bytes(r.input) } }, "upper": { ClosureHandler.text { t, _ in t.uppercased() } }]
  )

  @Test func picksTheDefaultForNoNameAndForOpenFxsHandler() throws {
    #expect(try registry.handler(named: nil).name == "echo")
    #expect(try registry.handler(named: "Handler").name == "echo")
    #expect(try registry.handler(named: "upper").name == "upper")
  }

  @Test func unknownNameIsAnErrorListingTheKnownOnes() {
    let error = #expect(throws: WatcherError.self) { try registry.handler(named: "sentiment") }
    #expect(error?.code == .unknownHandler)
    #expect(error?.message == "unknown handler \"sentiment\" (HANDLER_NAME); known handlers: echo, upper")
  }

  @Test func aFactoryThatThrowsIsAnErrorNamingTheHandler() {
    let failing = HandlerRegistry(defaultName: "db", factories: ["db": { throw HandlerError(.unavailable, "DB_URL is not set") }])
    let error = #expect(throws: WatcherError.self) { try failing.handler(named: nil) }
    #expect(error?.code == .handlerUnavailable)
    #expect(error?.message.hasPrefix("the handler \"db\" could not be created: ") == true)
    #expect(error?.message.contains("DB_URL is not set") == true)
  }

  @Test func handlerFilesThatAreNoLibrariesAreClearErrors() throws {
    let missing = "/nonexistent-\(UUID().uuidString)/libfn.so"
    let absent = #expect(throws: WatcherError.self) { try HandlerRegistry(libraryAt: missing) }
    #expect(absent?.code == .handlerFile)
    #expect(absent?.message == "cannot load the handler library \(missing) (HANDLER_FILE): No such file or directory")

    let directory = FileManager.default.temporaryDirectory.path
    let notAFile = #expect(throws: WatcherError.self) { try HandlerRegistry(libraryAt: directory) }
    #expect(notAFile?.message.hasSuffix("not a regular file") == true)

    let script = FileManager.default.temporaryDirectory.appendingPathComponent("handler-\(UUID().uuidString).py")
    try Data("def handle(req):\n    return req\n".utf8).write(to: script)
    defer { try? FileManager.default.removeItem(at: script) }
    let notELF = #expect(throws: WatcherError.self) { try HandlerRegistry(libraryAt: script.path) }
    #expect(notELF?.code == .handlerFile)
    #expect(notELF?.message.contains("not a loadable shared library") == true, "\(notELF?.message ?? "")")
  }
}

@Suite("Lock file")
struct LockFileTests {
  func temporaryPath() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("lock-\(UUID().uuidString)").path
  }

  @Test func createsAnEmptyFileWithMode0660WhateverTheUmask() throws {
    let lock = LockFile(path: temporaryPath())
    let previous = umask(0o077)
    defer { umask(previous) }
    try lock.create()
    defer { try? lock.remove() }
    let attributes = try FileManager.default.attributesOfItem(atPath: lock.path)
    #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o660)
    #expect((attributes[.size] as? NSNumber)?.intValue == 0)
  }

  @Test func removingIsIdempotent() throws {
    let lock = LockFile(path: temporaryPath())
    try lock.create()
    try lock.remove()
    #expect(!FileManager.default.fileExists(atPath: lock.path))
    try lock.remove()
  }

  @Test func anUnwritablePlaceIsAClearError() {
    let lock = LockFile(path: "/nonexistent-dir-\(UUID().uuidString)/.lock")
    let error = #expect(throws: WatcherError.self) { try lock.create() }
    #expect(error?.code == .lockFile)
    #expect(error?.message.contains("No such file or directory") == true)
  }
}
