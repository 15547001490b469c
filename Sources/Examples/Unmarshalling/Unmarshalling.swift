import HandlerKit

/// The seed's Go function `unmarshalling`: `json.Unmarshal` of `{"name","capacity","time"}` into
/// a struct, replying `fmt.Sprintf("%+v", reading)` exactly as Go 1.19 prints it.
///
/// As the original, it replies with whatever was filled even when decoding fails (the zero
/// struct on a syntax error, the other fields on a type error) and writes the error to the log
/// (with the request id) instead of failing the call.
public struct Unmarshalling: Handler {
  /// The Go struct `SensorReading{Name string; Capacity int; Time string}`.
  public struct SensorReading: Sendable, Hashable {
    /// `json:"name"`.
    public var name = ""
    /// `json:"capacity"` (Go's `int`: 64 bits).
    public var capacity: Int64 = 0
    /// `json:"time"`.
    public var time = ""

    /// Go's `%+v`: `{Name:battery sensor Capacity:40 Time:2019-01-21T19:07:28Z}`.
    public var goDescription: String { "{Name:\(name) Capacity:\(capacity) Time:\(time)}" }
  }

  /// Creates the handler.
  public init() {}

  /// Decodes the input and replies with the struct as Go prints it.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    let (reading, error) = Self.unmarshal(Array(request.input))
    if let error { context.logger.info("\(error)") }
    return .text(reading.goDescription)
  }

  /// What Go's `json.Unmarshal(input, &reading)` leaves in `reading`, and the error it returns.
  public static func unmarshal(_ input: [UInt8]) -> (SensorReading, String?) {
    var reading = SensorReading()
    let document: GoJSON.Value
    do {
      document = try GoJSON.parse(input)
    } catch {
      return (reading, error.description)
    }
    var firstError: String?
    func save(_ error: String) {
      if firstError == nil { firstError = error }
    }
    switch document {
    case .object(let members):
      for (rawKey, value) in members {
        guard let field = Field(key: GoJSON.unquote(rawKey)) else { continue }
        switch (field, value) {
        case (_, .null):
          break
        case (.name, .string(let raw)):
          reading.name = GoJSON.unquote(raw)
        case (.time, .string(let raw)):
          reading.time = GoJSON.unquote(raw)
        case (.capacity, .number(let literal)):
          if let number = GoJSON.parseInt(literal) {
            reading.capacity = number
          } else {
            save(field.typeError("number " + String(decoding: literal, as: UTF8.self)))
          }
        case (_, let value):
          save(field.typeError(value.goKind))
        }
      }
    case .null:
      break
    case let other:
      save("json: cannot unmarshal \(other.goKind) into Go value of type main.SensorReading")
    }
    return (reading, firstError)
  }

  /// A field of the struct, matched as Go matches JSON keys: exactly, else ignoring ASCII case.
  enum Field: String, CaseIterable {
    case name, capacity, time

    init?(key: String) {
      guard let field = Field(rawValue: key) ?? Field.allCases.first(where: { $0.matchesIgnoringCase(key) }) else {
        return nil
      }
      self = field
    }

    /// Go's `simpleLetterEqualFold`: equal length, each byte equal up to bit 0x20.
    func matchesIgnoringCase(_ key: String) -> Bool {
      let name = Array(rawValue.utf8)
      let key = Array(key.utf8)
      return name.count == key.count && zip(name, key).allSatisfy { $0 & ~0x20 == $1 & ~0x20 }
    }

    func typeError(_ value: String) -> String {
      "json: cannot unmarshal \(value) into Go struct field SensorReading.\(rawValue) of type \(self == .capacity ? "int" : "string")"
    }
  }
}

extension GoJSON.Value {
  /// The name Go's `UnmarshalTypeError` gives a value of this kind.
  fileprivate var goKind: String {
    switch self {
    case .object: "object"
    case .array: "array"
    case .string: "string"
    case .number: "number"
    case .bool: "bool"
    case .null: "null"
    }
  }
}
