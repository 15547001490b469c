internal import CLibXML2

/// Finds `a.issue` links in an HTML page with libxml2's HTML parser and takes their text as
/// BeautifulSoup's `.text` (with `html.parser`) gives it.
///
/// A module of its own because libxml2's headers bring the system's ICU, which clashes with
/// Foundation's own copy in any module that imports both.
public enum IssueLinks {
  /// Class tokens match exactly: `issue hot` yes, `issues` or `Issue` no.
  static let xpath = "//a[contains(concat(' ', normalize-space(@class), ' '), ' issue ')]"

  /// Tags whose strings BeautifulSoup leaves out of `.text` (its `Script`, `Stylesheet`,
  /// `TemplateString`, `RubyTextString` and `RubyParenthesisString`).
  static let skippedTags: Set<String> = ["script", "style", "template", "rt", "rp"]
  /// Tags inside which BeautifulSoup keeps whitespace-only strings as they are.
  static let whitespacePreservingTags: Set<String> = ["pre", "textarea"]

  /// The texts of the first `limit` `a.issue` links of `html`, decoded from `encoding`.
  public static func texts(html: [UInt8], encoding: String, limit: Int) -> [String] {
    guard !html.isEmpty else { return [] }
    let html = CharacterReferences.normalize(html)
    let options = Int32(
      HTML_PARSE_RECOVER.rawValue | HTML_PARSE_NOERROR.rawValue | HTML_PARSE_NOWARNING.rawValue
        | HTML_PARSE_NONET.rawValue | HTML_PARSE_COMPACT.rawValue)
    guard
      let document = html.withUnsafeBufferPointer({ buffer in
        buffer.withMemoryRebound(to: CChar.self) { htmlReadMemory($0.baseAddress, Int32($0.count), nil, encoding, options) }
      })
    else { return [] }
    defer { xmlFreeDoc(document) }
    guard let context = xmlXPathNewContext(document) else { return [] }
    defer { xmlXPathFreeContext(context) }
    guard let result = xmlXPathEvalExpression(xpath, context) else { return [] }
    defer { xmlXPathFreeObject(result) }
    guard let nodes = result.pointee.nodesetval, let table = nodes.pointee.nodeTab else { return [] }
    return (0..<min(Int(nodes.pointee.nodeNr), limit)).map { index in
      var text = ""
      appendText(of: table[index]!, to: &text, preservingWhitespace: isInsideWhitespacePreservingTag(table[index]!))
      return text
    }
  }

  /// BeautifulSoup's `.text`: every descendant string in order, comments and the strings of
  /// ``skippedTags`` left out, whitespace-only strings shortened to `"\n"` or `" "`.
  private static func appendText(of node: xmlNodePtr, to text: inout String, preservingWhitespace: Bool) {
    var child = node.pointee.children
    while let current = child {
      switch current.pointee.type {
      case XML_TEXT_NODE, XML_CDATA_SECTION_NODE:
        let content = current.pointee.content.map { String(cString: $0) } ?? ""
        text += preservingWhitespace ? content : shortenedIfBlank(content)
      case XML_ELEMENT_NODE:
        let name = elementName(current)
        if !skippedTags.contains(name) {
          appendText(
            of: current, to: &text, preservingWhitespace: preservingWhitespace || whitespacePreservingTags.contains(name))
        }
      default:
        break  // comments, processing instructions
      }
      child = current.pointee.next
    }
  }

  /// BeautifulSoup's rule for a string of ASCII whitespace only: `"\n"` if it holds a newline, else `" "`.
  static func shortenedIfBlank(_ string: String) -> String {
    let asciiSpaces: Set<UInt8> = [0x20, 0x0A, 0x09, 0x0C, 0x0D]
    guard !string.isEmpty, string.utf8.allSatisfy(asciiSpaces.contains) else { return string }
    return string.utf8.contains(0x0A) ? "\n" : " "
  }

  private static func elementName(_ node: xmlNodePtr) -> String {
    node.pointee.name.map { String(cString: $0) } ?? ""
  }

  private static func isInsideWhitespacePreservingTag(_ node: xmlNodePtr) -> Bool {
    var parent = node.pointee.parent
    while let current = parent, current.pointee.type == XML_ELEMENT_NODE {
      if whitespacePreservingTags.contains(elementName(current)) { return true }
      parent = current.pointee.parent
    }
    return false
  }
}
