/// JSON text (RFC 8259) to a `JSONValue`: the API's request bodies and
/// ch-remote's answers. Written here rather than taken from
/// FoundationEssentials' JSONDecoder, which linked ~2.8 MiB of code into
/// the VMM and cost every VM ~0.2 MiB of relocated data (bench/memory.py).
///
/// Strict where a client could hide something: no comments, no trailing
/// commas, no raw control characters or lone surrogates in strings, UTF-8
/// only, nothing after the value, and at most `maximumDepth` nested arrays
/// and objects (a hostile body cannot exhaust the API thread's stack).
public struct JSONReader {
    public struct Error: Swift.Error, CustomStringConvertible {
        /// Byte offset in the text where reading stopped.
        public let offset: Int
        public let reason: String
        public var description: String { "not JSON at byte \(offset): \(reason)" }
    }

    /// A VmConfig nests four deep; this leaves room and bounds recursion.
    public static let maximumDepth = 64

    private let bytes: [UInt8]
    private var at = 0

    /// The one value `bytes` holds.
    public static func parse(_ bytes: [UInt8]) throws(Error) -> JSONValue {
        var reader = JSONReader(bytes: bytes)
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.at == bytes.count else { throw reader.failure("text after the value") }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private func failure(_ reason: String) -> Error { Error(offset: at, reason: reason) }

    private mutating func skipSpace() {
        while at < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[at]) { at += 1 }
    }

    private mutating func expect(_ word: String) throws(Error) {
        for byte in word.utf8 {
            guard at < bytes.count, bytes[at] == byte else { throw failure("expected \(word)") }
            at += 1
        }
    }

    private mutating func value(depth: Int) throws(Error) -> JSONValue {
        skipSpace()
        guard at < bytes.count else { throw failure("a value is missing") }
        switch bytes[at] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw failure("unexpected character")
        }
    }

    private mutating func object(depth: Int) throws(Error) -> JSONValue {
        guard depth <= Self.maximumDepth else { throw failure("nested deeper than \(Self.maximumDepth)") }
        at += 1
        var fields: [String: JSONValue] = [:]
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(fields) }
        while true {
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw failure("expected a key") }
            let key = try string()
            skipSpace()
            try expect(":")
            // A key given twice: the last one counts, as serde and JSONDecoder read it.
            fields[key] = try value(depth: depth)
            skipSpace()
            guard at < bytes.count else { throw failure("an object is not closed") }
            at += 1
            if bytes[at - 1] == UInt8(ascii: "}") { return .object(fields) }
            guard bytes[at - 1] == UInt8(ascii: ",") else { at -= 1; throw failure("expected , or }") }
        }
    }

    private mutating func array(depth: Int) throws(Error) -> JSONValue {
        guard depth <= Self.maximumDepth else { throw failure("nested deeper than \(Self.maximumDepth)") }
        at += 1
        var values: [JSONValue] = []
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(values) }
        while true {
            values.append(try value(depth: depth))
            skipSpace()
            guard at < bytes.count else { throw failure("an array is not closed") }
            at += 1
            if bytes[at - 1] == UInt8(ascii: "]") { return .array(values) }
            guard bytes[at - 1] == UInt8(ascii: ",") else { at -= 1; throw failure("expected , or ]") }
        }
    }

    private mutating func string() throws(Error) -> String {
        at += 1
        var utf8: [UInt8] = []
        while true {
            guard at < bytes.count else { throw failure("a string is not closed") }
            let byte = bytes[at]
            at += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else { throw failure("a string that is not UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                try escape(into: &utf8)
            case 0..<0x20:
                at -= 1
                throw failure("a control character in a string")
            default:
                utf8.append(byte)
            }
        }
    }

    private mutating func escape(into utf8: inout [UInt8]) throws(Error) {
        guard at < bytes.count else { throw failure("a string is not closed") }
        let byte = bytes[at]
        at += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte); return
        case UInt8(ascii: "b"): utf8.append(0x08); return
        case UInt8(ascii: "f"): utf8.append(0x0c); return
        case UInt8(ascii: "n"): utf8.append(0x0a); return
        case UInt8(ascii: "r"): utf8.append(0x0d); return
        case UInt8(ascii: "t"): utf8.append(0x09); return
        case UInt8(ascii: "u"): break
        default: throw failure("an unknown escape")
        }
        var scalar = try hex4()
        if (0xd800..<0xdc00).contains(scalar) {
            guard at + 1 < bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else {
                throw failure("a lone surrogate")
            }
            at += 2
            let low = try hex4()
            guard (0xdc00..<0xe000).contains(low) else { throw failure("a lone surrogate") }
            scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
        }
        guard let unicode = Unicode.Scalar(scalar) else { throw failure("a lone surrogate") }
        utf8 += Array(String(Character(unicode)).utf8)
    }

    private mutating func hex4() throws(Error) -> UInt32 {
        guard at + 4 <= bytes.count,
              let value = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16),
              bytes[at..<at + 4].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") }) else {
            throw failure("\\u needs four hex digits")
        }
        at += 4
        return value
    }

    /// An integer is `.integer` while it fits an Int64; a larger one is kept
    /// as its text, so a size past 2^63 reaches the parser that names it (a
    /// negative one is a `.number`); a fraction or exponent makes a
    /// `.number` unless its value is a whole Int64 (`1.0`, `1e3`), read as
    /// JSONDecoder read it.
    private mutating func number() throws(Error) -> JSONValue {
        let start = at
        if bytes[at] == UInt8(ascii: "-") { at += 1 }
        let first = at
        let count = digits()
        guard count > 0 else { throw failure("a number without digits") }
        guard count == 1 || bytes[first] != UInt8(ascii: "0") else { throw failure("a number with a leading zero") }
        var whole = true
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1
            whole = false
            guard digits() > 0 else { throw failure("a fraction without digits") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            at += 1
            whole = false
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw failure("an exponent without digits") }
        }
        let text = String(decoding: bytes[start..<at], as: UTF8.self)
        if whole, let value = Int64(text) { return .integer(value) }
        if whole, UInt64(text) != nil { return .string(text) }
        guard let value = Double(text), value.isFinite else { throw failure("a number out of range") }
        if !whole, let integral = Int64(exactly: value) { return .integer(integral) }
        return .number(value)
    }

    /// Skips decimal digits; how many.
    private mutating func digits() -> Int {
        let start = at
        while at < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) { at += 1 }
        return at - start
    }
}
