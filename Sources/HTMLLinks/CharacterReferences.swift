/// Rewrites the character references in an HTML page's text as Python's `html.parser` and
/// BeautifulSoup read them, into forms libxml2 reads the same way.
///
/// The two parsers differ on references: BeautifulSoup decodes every HTML5 name even without
/// its `;` (`&amp here` → `& here`), keeps an unknown name without its `;` (`&foo;` → `&foo`), and
/// reads `&#128;`–`&#159;` as Windows-1252; libxml2 knows only HTML 4 names and needs the `;`.
/// So every reference in text (not in tags, comments, `<script>` or `<style>`) becomes numeric
/// (`&#x20AC;`) or an escaped ampersand (`&amp;foo`). Works on the raw bytes of any
/// ASCII-compatible encoding.
enum CharacterReferences {
  static func normalize(_ html: [UInt8]) -> [UInt8] {
    var output: [UInt8] = []
    output.reserveCapacity(html.count + html.count / 16)
    var index = 0
    while index < html.count {
      switch html[index] {
      case ascii("<"):
        let end = endOfMarkup(html, at: index)
        output.append(contentsOf: html[index..<end])
        let tag = html[index..<end]
        index = end
        if let rawTextEnd = endOfRawText(html, startTag: tag) {
          output.append(contentsOf: html[index..<rawTextEnd])
          index = rawTextEnd
        }
      case ascii("&"):
        index = rewriteReference(html, at: index, into: &output)
      default:
        output.append(html[index])
        index += 1
      }
    }
    return output
  }

  // MARK: - Markup

  /// The end (exclusive) of the tag, comment or declaration at `start`, or `start + 1` when the
  /// `<` is text.
  private static func endOfMarkup(_ html: [UInt8], at start: Int) -> Int {
    let next = start + 1 < html.count ? html[start + 1] : 0
    if matches(html, at: start, "<!--") {
      return search(html, for: Array("-->".utf8), from: start + 4).map { $0 + 3 } ?? html.count
    }
    guard isLetter(next) || next == ascii("/") || next == ascii("!") || next == ascii("?") else { return start + 1 }
    var index = start + 1
    var lastSignificant: UInt8 = 0
    while index < html.count {
      let byte = html[index]
      if byte == ascii(">") { return index + 1 }
      if (byte == ascii("\"") || byte == ascii("'")) && lastSignificant == ascii("=") {
        index = (html[(index + 1)...].firstIndex(of: byte) ?? html.count - 1) + 1
        lastSignificant = byte
        continue
      }
      if !isSpace(byte) { lastSignificant = byte }
      index += 1
    }
    return html.count
  }

  /// After a `<script>` or `<style>` start tag, where its raw text ends (at its end tag).
  private static func endOfRawText(_ html: [UInt8], startTag tag: ArraySlice<UInt8>) -> Int? {
    let name = tag.dropFirst().prefix { isLetter($0) }.map(lowercase)
    guard name == Array("script".utf8) || name == Array("style".utf8) else { return nil }
    let closing = Array("</".utf8) + name
    var index = tag.endIndex
    while index < html.count {
      if html[index] == ascii("<"), matchesIgnoringCase(html, at: index, closing) { return index }
      index += 1
    }
    return html.count
  }

  // MARK: - References

  /// Rewrites the reference at `start` (an `&`) as libxml2 will read it like BeautifulSoup does;
  /// returns where the text goes on.
  private static func rewriteReference(_ html: [UInt8], at start: Int, into output: inout [UInt8]) -> Int {
    var index = start + 1
    if index < html.count, html[index] == ascii("#") {
      // html.parser: &#(?:[0-9]+|[xX][0-9a-fA-F]+)[^0-9a-fA-F]
      index += 1
      let hex = index < html.count && (html[index] == ascii("x") || html[index] == ascii("X"))
      if hex { index += 1 }
      let digitsStart = index
      while index < html.count, hex ? isHexDigit(html[index]) : isDigit(html[index]) { index += 1 }
      guard index > digitsStart, index < html.count, !isHexDigit(html[index]) else {
        output.append(ascii("&"))
        return start + 1
      }
      let digits = String(decoding: html[digitsStart..<index], as: UTF8.self)
      appendNumeric(beautifulSoupCharacter(UInt32(digits, radix: hex ? 16 : 10)), to: &output)
      return html[index] == ascii(";") ? index + 1 : index
    }
    // html.parser: &([a-zA-Z][-.a-zA-Z0-9]*)[^a-zA-Z0-9]
    guard index < html.count, isLetter(html[index]) else {
      output.append(ascii("&"))
      return start + 1
    }
    while index < html.count, isLetter(html[index]) || isDigit(html[index]) || html[index] == ascii("-")
      || html[index] == ascii(".")
    {
      index += 1
    }
    guard index < html.count else {
      output.append(ascii("&"))
      return start + 1
    }
    let name = html[(start + 1)..<index]
    if let scalars = HTMLEntities.byName[Substring(decoding: name, as: UTF8.self)] {
      for scalar in scalars { appendNumeric(scalar, to: &output) }
    } else {
      output.append(contentsOf: Array("&amp;".utf8) + name)
    }
    return html[index] == ascii(";") ? index + 1 : index
  }

  /// BeautifulSoup's `handle_charref`: below 256 as Windows-1252 where that defines the byte,
  /// else the code point; U+FFFD for what is no character.
  static func beautifulSoupCharacter(_ value: UInt32?) -> Unicode.Scalar {
    guard let value else { return "\u{FFFD}" }
    if (0x80...0x9F).contains(value), let mapped = windows1252[Int(value - 0x80)] { return mapped }
    return Unicode.Scalar(value) ?? "\u{FFFD}"
  }

  /// Windows-1252's characters for 0x80–0x9F (`nil` where it defines none).
  private static let windows1252: [Unicode.Scalar?] = [
    "\u{20AC}", nil, "\u{201A}", "\u{0192}", "\u{201E}", "\u{2026}", "\u{2020}", "\u{2021}",
    "\u{02C6}", "\u{2030}", "\u{0160}", "\u{2039}", "\u{0152}", nil, "\u{017D}", nil,
    nil, "\u{2018}", "\u{2019}", "\u{201C}", "\u{201D}", "\u{2022}", "\u{2013}", "\u{2014}",
    "\u{02DC}", "\u{2122}", "\u{0161}", "\u{203A}", "\u{0153}", nil, "\u{017E}", "\u{0178}",
  ]

  private static func appendNumeric(_ scalar: Unicode.Scalar, to output: inout [UInt8]) {
    output.append(contentsOf: Array("&#x\(String(scalar.value, radix: 16));".utf8))
  }

  // MARK: - Bytes

  private static func ascii(_ character: Unicode.Scalar) -> UInt8 { UInt8(character.value) }
  private static func isLetter(_ byte: UInt8) -> Bool { (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) }
  private static func isDigit(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) }
  private static func isHexDigit(_ byte: UInt8) -> Bool {
    isDigit(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
  }
  private static func isSpace(_ byte: UInt8) -> Bool { [0x20, 0x09, 0x0A, 0x0C, 0x0D].contains(byte) }
  private static func lowercase(_ byte: UInt8) -> UInt8 { (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }

  private static func matches(_ html: [UInt8], at index: Int, _ text: String) -> Bool {
    let bytes = Array(text.utf8)
    return index + bytes.count <= html.count && html[index..<index + bytes.count].elementsEqual(bytes)
  }

  private static func matchesIgnoringCase(_ html: [UInt8], at index: Int, _ bytes: [UInt8]) -> Bool {
    index + bytes.count <= html.count && html[index..<index + bytes.count].map(lowercase).elementsEqual(bytes)
  }

  private static func search(_ html: [UInt8], for needle: [UInt8], from start: Int) -> Int? {
    var index = start
    while index + needle.count <= html.count {
      if html[index..<index + needle.count].elementsEqual(needle) { return index }
      index += 1
    }
    return nil
  }
}
