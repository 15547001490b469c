/// The parts of Go's `encoding/json` (Go 1.19) that `json.Unmarshal` into a struct of string
/// and int fields uses, reproduced byte for byte: the syntax check of the whole input first,
/// then field matching (exact, else ASCII case-insensitive), Go's string unquoting (invalid
/// UTF-8 and lone surrogates become U+FFFD, one per bad byte as `utf8.DecodeRune` does),
/// `strconv.ParseInt` for ints, and Go's error values (the first type error is kept, the other
/// fields still filled).
enum GoJSON {
  /// A JSON value, kept as the raw bytes of its literal where Go keeps them.
  enum Value {
    case object([(key: [UInt8], value: Value)])
    case array
    case string([UInt8])
    case number([UInt8])
    case bool
    case null
  }

  /// A syntax error: Go's `*json.SyntaxError` text.
  struct SyntaxError: Error, CustomStringConvertible {
    let description: String
  }

  /// Parses `bytes` as one JSON value with nothing but whitespace around it, as Go's
  /// `checkValid` and decoder do together.
  static func parse(_ bytes: [UInt8]) throws(SyntaxError) -> Value {
    var parser = Parser(bytes: bytes)
    parser.skipWhitespace()
    let value = try parser.value(context: "looking for beginning of value")
    parser.skipWhitespace()
    if parser.index < bytes.count {
      throw SyntaxError(description: "invalid character \(Parser.quote(bytes[parser.index])) after top-level value")
    }
    return value
  }

  /// A JSON string's contents as Go's `unquote` makes them.
  static func unquote(_ raw: [UInt8]) -> String {
    var scalars = String.UnicodeScalarView()
    var index = 0
    while index < raw.count {
      let byte = raw[index]
      if byte == UInt8(ascii: "\\") {
        let escape = raw[index + 1]
        index += 2
        switch escape {
        case UInt8(ascii: "b"): scalars.append("\u{8}")
        case UInt8(ascii: "f"): scalars.append("\u{C}")
        case UInt8(ascii: "n"): scalars.append("\n")
        case UInt8(ascii: "r"): scalars.append("\r")
        case UInt8(ascii: "t"): scalars.append("\t")
        case UInt8(ascii: "u"):
          var rune = hex4(raw, at: index)
          index += 4
          if (0xD800...0xDFFF).contains(rune) {
            // A valid pair only when a high surrogate meets a low one in the next escape.
            if (0xD800...0xDBFF).contains(rune), index + 6 <= raw.count, raw[index] == UInt8(ascii: "\\"),
              raw[index + 1] == UInt8(ascii: "u")
            {
              let low = hex4(raw, at: index + 2)
              if (0xDC00...0xDFFF).contains(low) {
                rune = 0x10000 + ((rune - 0xD800) << 10) + (low - 0xDC00)
                index += 6
              } else {
                rune = 0xFFFD
              }
            } else {
              rune = 0xFFFD
            }
          }
          scalars.append(Unicode.Scalar(rune)!)
        default: scalars.append(Unicode.Scalar(escape))  // \" \\ \/
        }
      } else if byte < 0x80 {
        scalars.append(Unicode.Scalar(byte))
        index += 1
      } else {
        let (scalar, size) = decodeRune(raw, at: index)
        scalars.append(scalar)
        index += size
      }
    }
    return String(scalars)
  }

  /// Go's `utf8.DecodeRune`: one scalar and its length, or U+FFFD and 1 for any invalid byte.
  static func decodeRune(_ bytes: [UInt8], at index: Int) -> (Unicode.Scalar, Int) {
    let replacement: (Unicode.Scalar, Int) = ("\u{FFFD}", 1)
    let first = bytes[index]
    let (length, low, high): (Int, UInt8, UInt8) =
      switch first {
      case 0xC2...0xDF: (2, 0x80, 0xBF)
      case 0xE0: (3, 0xA0, 0xBF)
      case 0xE1...0xEC, 0xEE...0xEF: (3, 0x80, 0xBF)
      case 0xED: (3, 0x80, 0x9F)
      case 0xF0: (4, 0x90, 0xBF)
      case 0xF1...0xF3: (4, 0x80, 0xBF)
      case 0xF4: (4, 0x80, 0x8F)
      default: (0, 0, 0)
      }
    guard length > 0, index + length <= bytes.count, (low...high).contains(bytes[index + 1]) else { return replacement }
    for offset in 2..<max(2, length) where !(0x80...0xBF).contains(bytes[index + offset]) {
      return replacement
    }
    var value = UInt32(first) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
    for offset in 1..<length { value = value << 6 | UInt32(bytes[index + offset] & 0x3F) }
    return (Unicode.Scalar(value)!, length)
  }

  /// Go's `strconv.ParseInt(s, 10, 64)` on a JSON number literal.
  static func parseInt(_ literal: [UInt8]) -> Int64? {
    guard !literal.isEmpty else { return nil }
    var digits = literal[...]
    let negative = digits.first == UInt8(ascii: "-")
    if negative { digits = digits.dropFirst() }
    guard !digits.isEmpty else { return nil }
    var magnitude: UInt64 = 0
    for digit in digits {
      guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
      let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
      guard !overflow1, !overflow2 else { return nil }
      magnitude = sum
    }
    if negative {
      guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
      return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
    }
    guard magnitude <= UInt64(Int64.max) else { return nil }
    return Int64(magnitude)
  }

  private static func hex4(_ bytes: [UInt8], at index: Int) -> UInt32 {
    var value: UInt32 = 0
    for byte in bytes[index..<index + 4] {
      let digit: UInt8 =
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: byte - UInt8(ascii: "A") + 10
        }
      value = value << 4 | UInt32(digit)
    }
    return value
  }

  /// A strict RFC 8259 parser with Go's scanner messages.
  private struct Parser {
    let bytes: [UInt8]
    var index = 0

    mutating func skipWhitespace() {
      while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    /// The error for the byte at `index`, or for the end of the input. Go's scanner meets the
    /// end as one more space: inside a token (`inToken`) that space is the invalid character.
    func unexpected(_ context: String, inToken: Bool = false) -> SyntaxError {
      guard index < bytes.count else {
        return SyntaxError(description: inToken ? "invalid character ' ' \(context)" : "unexpected end of JSON input")
      }
      return SyntaxError(description: "invalid character \(Self.quote(bytes[index])) \(context)")
    }

    mutating func value(context: String) throws(SyntaxError) -> Value {
      guard index < bytes.count else { throw unexpected(context) }
      switch bytes[index] {
      case UInt8(ascii: "{"): return try object()
      case UInt8(ascii: "["): return try array()
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
      case UInt8(ascii: "t"): try literal("true"); return .bool
      case UInt8(ascii: "f"): try literal("false"); return .bool
      case UInt8(ascii: "n"): try literal("null"); return .null
      default: throw unexpected(context)
      }
    }

    mutating func object() throws(SyntaxError) -> Value {
      index += 1
      var members: [(key: [UInt8], value: Value)] = []
      skipWhitespace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
        index += 1
        return .object(members)
      }
      while true {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
          throw unexpected("looking for beginning of object key string")
        }
        let key = try string()
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw unexpected("after object key") }
        index += 1
        skipWhitespace()
        members.append((key, try value(context: "looking for beginning of value")))
        skipWhitespace()
        guard index < bytes.count else { throw unexpected("") }
        if bytes[index] == UInt8(ascii: ",") {
          index += 1
        } else if bytes[index] == UInt8(ascii: "}") {
          index += 1
          return .object(members)
        } else {
          throw unexpected("after object key:value pair")
        }
      }
    }

    mutating func array() throws(SyntaxError) -> Value {
      index += 1
      skipWhitespace()
      if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
        index += 1
        return .array
      }
      while true {
        skipWhitespace()
        _ = try value(context: "looking for beginning of value")
        skipWhitespace()
        guard index < bytes.count else { throw unexpected("") }
        if bytes[index] == UInt8(ascii: ",") {
          index += 1
        } else if bytes[index] == UInt8(ascii: "]") {
          index += 1
          return .array
        } else {
          throw unexpected("after array element")
        }
      }
    }

    /// A string's raw contents (between the quotes), checked as Go's scanner checks them.
    mutating func string() throws(SyntaxError) -> [UInt8] {
      index += 1
      let start = index
      while index < bytes.count {
        let byte = bytes[index]
        switch byte {
        case UInt8(ascii: "\""):
          defer { index += 1 }
          return Array(bytes[start..<index])
        case UInt8(ascii: "\\"):
          index += 1
          guard index < bytes.count else { throw unexpected("in string escape code", inToken: true) }
          switch bytes[index] {
          case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            index += 1
          case UInt8(ascii: "u"):
            index += 1
            for _ in 0..<4 {
              guard index < bytes.count, bytes[index].isHexDigit else {
                throw unexpected("in \\u hexadecimal character escape", inToken: true)
              }
              index += 1
            }
          default:
            throw unexpected("in string escape code")
          }
        case 0x00..<0x20:
          throw unexpected("in string literal")
        default:
          index += 1
        }
      }
      throw unexpected("")
    }

    mutating func number() throws(SyntaxError) -> [UInt8] {
      let start = index
      if bytes[index] == UInt8(ascii: "-") {
        index += 1
        guard index < bytes.count, bytes[index].isDigit else { throw unexpected("in numeric literal", inToken: true) }
      }
      if bytes[index] == UInt8(ascii: "0") {
        index += 1
      } else {
        while index < bytes.count, bytes[index].isDigit { index += 1 }
      }
      if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
        index += 1
        guard index < bytes.count, bytes[index].isDigit else {
          throw unexpected("after decimal point in numeric literal", inToken: true)
        }
        while index < bytes.count, bytes[index].isDigit { index += 1 }
      }
      if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
        index += 1
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, bytes[index].isDigit else {
          throw unexpected("in exponent of numeric literal", inToken: true)
        }
        while index < bytes.count, bytes[index].isDigit { index += 1 }
      }
      return Array(bytes[start..<index])
    }

    mutating func literal(_ word: String) throws(SyntaxError) {
      for byte in word.utf8 {
        guard index < bytes.count, bytes[index] == byte else {
          throw unexpected("in literal \(word) (expecting \(Self.quote(byte)))", inToken: true)
        }
        index += 1
      }
    }

    /// Go's `quoteChar`: the byte as a Latin-1 rune in single quotes, `strconv.Quote`-escaped.
    static func quote(_ byte: UInt8) -> String {
      let escaped: String =
        switch byte {
        case UInt8(ascii: "'"): #"\'"#
        case UInt8(ascii: "\""): "\""
        case UInt8(ascii: "\\"): #"\\"#
        case 0x07: #"\a"#
        case 0x08: #"\b"#
        case 0x0C: #"\f"#
        case 0x0A: #"\n"#
        case 0x0D: #"\r"#
        case 0x09: #"\t"#
        case 0x0B: #"\v"#
        case 0x00..<0x20, 0x7F: "\\x" + hex(byte, digits: 2)
        case 0x80..<0xA0, 0xA0, 0xAD: "\\u" + hex(byte, digits: 4)
        default: String(Character(Unicode.Scalar(byte)))
        }
      return "'\(escaped)'"
    }

    private static func hex(_ byte: UInt8, digits: Int) -> String {
      let text = String(byte, radix: 16)
      return String(repeating: "0", count: digits - text.count) + text
    }
  }
}

extension UInt8 {
  fileprivate var isDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
  fileprivate var isHexDigit: Bool {
    isDigit || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
  }
}
