import Foundation

/// A minimal element tree of an XML document: names, children and the text of leaf elements,
/// trimmed of surrounding white space (as torchvision's VOC parser reads it).
///
/// Read by a strict parser of the XML that annotation files use: elements, attributes (checked,
/// not kept), text with character and the five predefined entity references, CDATA sections,
/// comments and processing instructions. A document type declaration is refused, so no entity
/// can expand. (Foundation's XMLParser, used before, traps on an element name that is not UTF-8
/// and leaks an error object for every malformed document; Scripts/fuzz.sh found both.)
struct XMLTree {
    var name: String
    var children: [XMLTree] = []
    var text: String?

    /// The first child element named `name`.
    func child(_ name: String) -> XMLTree? { children.first { $0.name == name } }

    /// The tree of the document `data`; `path` names it in errors.
    static func parse(_ data: Data, path: String) throws(DiscoveryError) -> XMLTree {
        var reader = XMLReader(bytes: [UInt8](data), path: path)
        return try reader.document()
    }
}

/// A cursor over the document's UTF-8 bytes.
private struct XMLReader {
    let bytes: [UInt8]
    let path: String
    var index = 0

    /// Elements nested deeper than this are refused (VOC nests 3 deep).
    static let maxDepth = 256

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    func fail(_ reason: String) -> DiscoveryError {
        let line = 1 + bytes[..<min(index, bytes.count)].count { $0 == UInt8(ascii: "\n") }
        return .unreadableFile(path: path, reason: "not well-formed XML (line \(line)): \(reason)")
    }

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    func starts(with text: String) -> Bool {
        let expected = Array(text.utf8)
        return bytes.count - index >= expected.count && bytes[index..<(index + expected.count)].elementsEqual(expected)
    }

    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    /// Skips white space; whether there was any.
    @discardableResult
    mutating func skipSpace() -> Bool {
        let start = index
        while let byte = current, Self.isSpace(byte) { index += 1 }
        return index > start
    }

    mutating func expect(_ text: String) throws(DiscoveryError) {
        guard starts(with: text) else { throw fail("expected '\(text)'") }
        index += text.utf8.count
    }

    /// Moves past the next `terminator`.
    mutating func skip(past terminator: String, what: String) throws(DiscoveryError) {
        let end = Array(terminator.utf8)
        while index < bytes.count {
            if starts(with: terminator) {
                index += end.count
                return
            }
            index += 1
        }
        throw fail("unterminated \(what)")
    }

    mutating func document() throws(DiscoveryError) -> XMLTree {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw .unreadableFile(path: path, reason: "not UTF-8 text (VOC annotations are UTF-8 XML)")
        }
        if starts(with: "\u{FEFF}") { index += 3 }
        try skipMisc()
        guard current == UInt8(ascii: "<") else { throw fail(index == bytes.count ? "no root element" : "text before the root element") }
        let root = try element(depth: 0)
        try skipMisc()
        guard index == bytes.count else { throw fail("content after the root element") }
        return root
    }

    /// White space, comments and processing instructions (the XML declaration among them).
    mutating func skipMisc() throws(DiscoveryError) {
        while true {
            skipSpace()
            if starts(with: "<?") {
                try skip(past: "?>", what: "processing instruction")
            } else if starts(with: "<!--") {
                try skip(past: "-->", what: "comment")
            } else if starts(with: "<!") {
                throw fail("document type declarations are not read")
            } else {
                return
            }
        }
    }

    /// A name: up to white space or one of `/>=` (names beyond ASCII are taken as they are).
    mutating func name() throws(DiscoveryError) -> String {
        let start = index
        while let byte = current, !Self.isSpace(byte), !"/>=<&\"'".utf8.contains(byte) { index += 1 }
        guard index > start, let first = bytes[start...].first, !"-.0123456789".utf8.contains(first) else {
            throw fail("expected a name")
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func element(depth: Int) throws(DiscoveryError) -> XMLTree {
        guard depth < Self.maxDepth else { throw fail("elements nested deeper than \(Self.maxDepth)") }
        index += 1
        let name = try self.name()
        while true {
            let spaced = skipSpace()
            if starts(with: "/>") {
                index += 2
                return XMLTree(name: name, text: "")
            }
            if current == UInt8(ascii: ">") {
                index += 1
                break
            }
            guard spaced else { throw fail("expected white space, '>' or '/>' in <\(name)>") }
            _ = try self.name()
            skipSpace()
            try expect("=")
            skipSpace()
            _ = try quoted()
        }
        var element = XMLTree(name: name)
        var text = ""
        while true {
            guard index < bytes.count else { throw fail("<\(name)> is not closed") }
            if starts(with: "</") {
                index += 2
                let closing = try self.name()
                guard closing == name else { throw fail("</\(closing)> closes <\(name)>") }
                skipSpace()
                try expect(">")
                if element.children.isEmpty { element.text = text.trimmingCharacters(in: .whitespacesAndNewlines) }
                return element
            }
            if starts(with: "<!--") {
                try skip(past: "-->", what: "comment")
            } else if starts(with: "<![CDATA[") {
                index += 9
                let start = index
                try skip(past: "]]>", what: "CDATA section")
                text += String(decoding: bytes[start..<(index - 3)], as: UTF8.self)
            } else if starts(with: "<?") {
                try skip(past: "?>", what: "processing instruction")
            } else if starts(with: "<!") {
                throw fail("unexpected declaration in <\(name)>")
            } else if current == UInt8(ascii: "<") {
                element.children.append(try self.element(depth: depth + 1))
            } else {
                text += try characters(until: UInt8(ascii: "<"))
            }
        }
    }

    /// An attribute value in single or double quotes.
    mutating func quoted() throws(DiscoveryError) -> String {
        guard let quote = current, quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else { throw fail("expected a quoted value") }
        index += 1
        let value = try characters(until: quote)
        guard current == quote else { throw fail("unterminated attribute value") }
        index += 1
        return value
    }

    /// Text up to `end` (or the end of the document) with its references replaced; `<` is not
    /// allowed inside an attribute value.
    mutating func characters(until end: UInt8) throws(DiscoveryError) -> String {
        var text: [UInt8] = []
        while let byte = current, byte != end {
            if byte == UInt8(ascii: "<") { throw fail("'<' inside an attribute value") }
            if byte == UInt8(ascii: "&") {
                text += Array(try reference().utf8)
            } else {
                text.append(byte)
                index += 1
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// `&lt;`, `&gt;`, `&amp;`, `&apos;`, `&quot;`, `&#N;` or `&#xH;`.
    mutating func reference() throws(DiscoveryError) -> String {
        guard let semicolon = bytes[index...].prefix(12).firstIndex(of: UInt8(ascii: ";")) else { throw fail("unterminated reference") }
        let body = String(decoding: bytes[(index + 1)..<semicolon], as: UTF8.self)
        index = semicolon + 1
        switch body {
        case "lt": return "<"
        case "gt": return ">"
        case "amp": return "&"
        case "apos": return "'"
        case "quot": return "\""
        default:
            let number = body.hasPrefix("#x") ? UInt32(body.dropFirst(2), radix: 16) : body.hasPrefix("#") ? UInt32(body.dropFirst(), radix: 10) : nil
            guard let number, number != 0, let scalar = Unicode.Scalar(number) else { throw fail("unknown reference '&\(body);'") }
            return String(Character(scalar))
        }
    }
}
