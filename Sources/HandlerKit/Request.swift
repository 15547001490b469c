#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One invocation's input: the caller's bytes and the OpenFx `Info` that came with them.
public struct Request: Sendable, Hashable {
  /// The raw input bytes, exactly as the caller sent them.
  public var input: Data
  /// What OpenFx says about the function and the trigger; fields the caller left out are empty.
  public var info: Info

  /// Creates a request from raw bytes.
  public init(input: Data = Data(), info: Info = Info()) {
    self.input = input
    self.info = info
  }

  /// Creates a request whose input is the UTF-8 encoding of `text`.
  public init(_ text: String, info: Info = Info()) {
    self.init(input: Data(text.utf8), info: info)
  }

  /// The input as text, or `nil` when it is not valid UTF-8 (never repaired).
  public var text: String? {
    input.withUnsafeBytes { String(validating: $0, as: UTF8.self) }
  }

  /// The input decoded from JSON; a malformed document is an ``HandlerError/Code/invalidArgument`` error.
  public func decode<Value: Decodable>(
    _ type: Value.Type = Value.self,
    using decoder: JSONDecoder = JSONDecoder()
  ) throws(HandlerError) -> Value {
    do {
      return try decoder.decode(type, from: input)
    } catch {
      throw HandlerError(.invalidArgument, "input is not a valid \(Value.self) JSON document: \(error)")
    }
  }
}

/// OpenFx's `Info` message: the function and what triggered this call.
public struct Info: Sendable, Hashable {
  /// The function's name as the gateway knows it (`Info.FunctionName`).
  public var functionName: String
  /// The caller's timeout as text, such as `"30s"` or `"30"` (`Info.Timeout`); often empty.
  public var timeout: String
  /// The runtime the gateway believes the function uses (`Info.Runtime`).
  public var runtime: String
  /// The resource limits of the function's container (`Info.Limits`).
  public var limits: Resources
  /// What triggered the call (`Info.Trigger`).
  public var trigger: Trigger

  /// Creates an `Info`; every field defaults to empty, as OpenFx leaves them.
  public init(
    functionName: String = "",
    timeout: String = "",
    runtime: String = "",
    limits: Resources = Resources(),
    trigger: Trigger = Trigger()
  ) {
    self.functionName = functionName
    self.timeout = timeout
    self.runtime = runtime
    self.limits = limits
    self.trigger = trigger
  }
}

/// OpenFx's `Trigger` message: the gateway sends `name: "grpc"` and the time of the call.
public struct Trigger: Sendable, Hashable {
  /// The kind of trigger, such as `"grpc"` or `"mqtt"`.
  public var name: String
  /// The topic for message-driven triggers.
  public var topic: String
  /// When the trigger fired, as the sender formatted it.
  public var time: String

  /// Creates a trigger; every field defaults to empty.
  public init(name: String = "", topic: String = "", time: String = "") {
    self.name = name
    self.topic = topic
    self.time = time
  }
}

/// OpenFx's `Resources` message: container limits as Kubernetes quantities (`"128Mi"`, `"500m"`).
public struct Resources: Sendable, Hashable {
  /// The memory limit.
  public var memory: String
  /// The CPU limit.
  public var cpu: String
  /// The GPU limit.
  public var gpu: String

  /// Creates a resource description; every field defaults to empty.
  public init(memory: String = "", cpu: String = "", gpu: String = "") {
    self.memory = memory
    self.cpu = cpu
    self.gpu = gpu
  }
}
