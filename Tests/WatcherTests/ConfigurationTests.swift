import Logging
import SettingValues
import Testing

@testable import Watcher

@Suite("Configuration")
struct ConfigurationTests {
  @Test func defaultsAreOpenFxs() throws {
    let configuration = try WatcherConfiguration(environment: [:])
    #expect(configuration == .defaults)
    #expect(configuration.host == "0.0.0.0")
    #expect(configuration.port == 50051 && configuration.meshPort == 50052)
    #expect(configuration.lockFilePath == "/tmp/.lock")
    #expect(configuration.handlerName == nil)
    #expect(configuration.logLevel == .info)
    #expect(configuration.drainTimeout == .seconds(10))
    #expect(configuration.execTimeout == .seconds(60))
    #expect(configuration.maxInFlight == 0)
    #expect(configuration.maxMessageBytes == 4 * 1024 * 1024)
    #expect(configuration.functionName == nil)
    #expect(configuration.busyPoll == .microseconds(30))
  }

  @Test func readsTheBusyPoll() throws {
    #expect(try WatcherConfiguration(environment: ["BUSY_POLL": "200us"]).busyPoll == .microseconds(200))
    #expect(try WatcherConfiguration(environment: ["BUSY_POLL": "1ms"]).busyPoll == .milliseconds(1))
    #expect(try WatcherConfiguration(environment: ["BUSY_POLL": "10ms"]).busyPoll == .milliseconds(10))
    #expect(try WatcherConfiguration(environment: ["BUSY_POLL": "0"]).busyPoll == .zero)
  }

  @Test func readsTheLimits() throws {
    let configuration = try WatcherConfiguration(environment: [
      "EXEC_TIMEOUT": "2m", "MAX_INFLIGHT": "64", "MAX_MESSAGE_BYTES": "512KiB", "FUNCTION_NAME": "imgprocessing",
    ])
    #expect(configuration.execTimeout == .seconds(120))
    #expect(configuration.maxInFlight == 64)
    #expect(configuration.maxMessageBytes == 512 * 1024)
    #expect(configuration.functionName == "imgprocessing")
    #expect(try WatcherConfiguration(environment: ["EXEC_TIMEOUT": "0"]).execTimeout == nil)
  }

  @Test func readsTheMeshAndMetricsSettings() throws {
    let defaults = try WatcherConfiguration(environment: [:])
    #expect(defaults.metricsPort == nil)
    #expect(defaults.meshNamespace == "openfx-fn" && defaults.meshAddressTemplate == "{function}.{namespace}:50052")
    let configuration = try WatcherConfiguration(environment: [
      "METRICS_PORT": "9464", "MESH_NAMESPACE": "team-a", "MESH_ADDRESS": "{function}.{namespace}.svc:7000",
    ])
    #expect(configuration.metricsPort == 9464)
    #expect(configuration.meshNamespace == "team-a")
    #expect(configuration.meshAddressTemplate == "{function}.{namespace}.svc:7000")
  }

  @Test(arguments: [
    ("4194304", 4_194_304), ("4MiB", 4_194_304), ("4Mi", 4_194_304), ("4M", 4_194_304), ("512KiB", 524_288),
    ("1GiB", 1 << 30), ("100B", 100),
  ])
  func parsesByteCounts(text: String, bytes: Int) {
    #expect(ByteCount.parse(text) == bytes)
  }

  @Test func readsEverySetting() throws {
    let configuration = try WatcherConfiguration(environment: [
      "WATCHER_HOST": "::1", "WATCHER_PORT": "6000", "MESH_PORT": "6001", "HANDLER_NAME": "sleep",
      "LOCK_FILE": "/run/fx.lock", "LOG_LEVEL": "DEBUG", "DRAIN_TIMEOUT": "1m30s", "HANDLER_FILE": "/opt/fn/libfn.so",
    ])
    #expect(configuration.host == "::1")
    #expect(configuration.port == 6000 && configuration.meshPort == 6001)
    #expect(configuration.handlerName == "sleep")
    #expect(configuration.handlerFile == "/opt/fn/libfn.so")
    #expect(configuration.lockFilePath == "/run/fx.lock")
    #expect(configuration.logLevel == .debug)
    #expect(configuration.drainTimeout == .seconds(90))
  }

  @Test func acceptsOpenFxGosPortNameAndPrefersWatcherPort() throws {
    #expect(try WatcherConfiguration(environment: ["PORT": "7000"]).port == 7000)
    #expect(try WatcherConfiguration(environment: ["PORT": "7000", "WATCHER_PORT": "7001"]).port == 7001)
  }

  @Test func emptyOrBlankValuesKeepTheDefaults() throws {
    let configuration = try WatcherConfiguration(environment: ["WATCHER_PORT": "", "LOG_LEVEL": "  ", "MESH_PORT": " 6100 "])
    #expect(configuration.port == 50051)
    #expect(configuration.logLevel == .info)
    #expect(configuration.meshPort == 6100)
    // Only the ends are trimmed, of any whitespace; what is inside stays.
    let named = try WatcherConfiguration(environment: ["FUNCTION_NAME": "\t my  fn\u{3000}\n", "HANDLER_NAME": "\u{00A0}"])
    #expect(named.functionName == "my  fn")
    #expect(named.handlerName == nil)
  }

  @Test(arguments: [
    (["WATCHER_PORT": "abc"], "WATCHER_PORT \"abc\""),
    (["WATCHER_PORT": "70000"], "WATCHER_PORT \"70000\""),
    (["PORT": "-1"], "PORT \"-1\""),
    (["MESH_PORT": "5e3"], "MESH_PORT \"5e3\""),
    (["WATCHER_HOST": "example.com"], "WATCHER_HOST \"example.com\""),
    (["LOG_LEVEL": "loud"], "LOG_LEVEL \"loud\""),
    (["DRAIN_TIMEOUT": "forever"], "DRAIN_TIMEOUT \"forever\""),
    (["WATCHER_PORT": "6000", "MESH_PORT": "6000"], "must differ"),
    (["EXEC_TIMEOUT": "a while"], "EXEC_TIMEOUT \"a while\""),
    (["MAX_INFLIGHT": "-3"], "MAX_INFLIGHT \"-3\""),
    (["MAX_MESSAGE_BYTES": "0"], "MAX_MESSAGE_BYTES \"0\""),
    (["MAX_MESSAGE_BYTES": "2GiB"], "MAX_MESSAGE_BYTES \"2GiB\""),
    (["MAX_MESSAGE_BYTES": "lots"], "MAX_MESSAGE_BYTES \"lots\""),
    (["METRICS_PORT": "50051"], "already the gateway or mesh port"),
    (["METRICS_PORT": "http"], "METRICS_PORT \"http\""),
    (["MESH_NAMESPACE": "a/b"], "MESH_NAMESPACE \"a/b\""),
    (["MESH_ADDRESS": "{function}"], "MESH_ADDRESS \"{function}\""),
    (["BUSY_POLL": "soon"], "BUSY_POLL \"soon\""),
    (["BUSY_POLL": "-5us"], "BUSY_POLL \"-5us\""),
    (["BUSY_POLL": "50"], "BUSY_POLL \"50\": expected at most 10ms"),
  ])
  func refusesBadValuesNamingThem(environment: [String: String], expected: String) {
    let error = #expect(throws: WatcherError.self) { try WatcherConfiguration(environment: environment) }
    #expect(error?.code == .invalidConfiguration)
    #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
  }

  @Test func flagsOverrideTheEnvironment() throws {
    let options = try WatcherOptions.parse([
      "--port", "6200", "--handler", "fail", "--drain-timeout", "2s", "--handler-file", "/opt/fn/libfn.so",
      "--busy-poll", "0",
    ])
    let merged = ["WATCHER_PORT": "6100", "MESH_PORT": "6101", "HANDLER_NAME": "echo"].merging(options.environment) { $1 }
    let configuration = try WatcherConfiguration(environment: merged)
    #expect(configuration.port == 6200 && configuration.meshPort == 6101)
    #expect(configuration.handlerName == "fail")
    #expect(configuration.handlerFile == "/opt/fn/libfn.so")
    #expect(configuration.drainTimeout == .seconds(2))
    #expect(configuration.busyPoll == .zero)
  }

  @Test func unknownFlagsAreRefused() {
    #expect(throws: (any Error).self) { try WatcherOptions.parse(["--prot", "1"]) }
  }
}

@Suite("Go-style durations")
struct GoDurationTests {
  @Test(arguments: [
    ("30s", Duration.seconds(30)), ("30", .seconds(30)), ("1m30s", .seconds(90)), ("250ms", .milliseconds(250)),
    ("1.5h", .seconds(5400)), ("0", .zero), ("2.5", .milliseconds(2500)), ("10us", .microseconds(10)),
    ("10µs", .microseconds(10)), ("7ns", .nanoseconds(7)), ("1h2m3s4ms", .milliseconds(3_723_004)),
  ])
  func parses(text: String, expected: Duration) {
    #expect(GoDuration.parse(text) == expected)
  }

  @Test(arguments: ["", "s", "-5s", "5x", "1.2.3s", "5 s", "abc", "1e3", "inf", "9999999999999h"])
  func refuses(text: String) {
    #expect(GoDuration.parse(text) == nil)
  }
}
