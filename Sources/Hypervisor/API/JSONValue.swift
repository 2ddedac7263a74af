/// Any JSON value. The API reads a `VmConfig` as a tree of these and hands
/// each device's fields to the command line's own parser as `key=value`
/// text, so both front ends share one parser and one validator.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Compact JSON text, keys sorted. Written here rather than with
    /// JSONEncoder: the answers are small trees of these, and the encoder's
    /// code and metadata cost each VMM ~0.1 MiB of PSS (bench/memory.py).
    public var serialized: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let value): out += Array((value ? "true" : "false").utf8)
        case .integer(let value): out += Array(String(value).utf8)
        case .number(let value): out += Array((value.isFinite ? String(value) : "null").utf8)
        case .string(let value): Self.write(value, to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (i, value) in values.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            // An absent field is left out, not written null, as Cloud
            // Hypervisor's serde (skip_serializing_none) leaves it out: its
            // OpenAPI schema declares those fields non-nullable.
            out.append(UInt8(ascii: "{"))
            for (i, key) in fields.keys.filter({ fields[$0] != .null }).sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(key, to: &out)
                out.append(UInt8(ascii: ":"))
                fields[key]!.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// ASCII only: anything else as \\u escapes (a surrogate pair above
    /// U+FFFF). Cloud Hypervisor's ch-remote reads an answer in 256-byte
    /// pieces and decodes each as UTF-8 on its own, so a character split
    /// between two pieces (a path in an error, say) would make it panic.
    private static func write(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22: out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case 0x5c: out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0a: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0d: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x20..<0x7f: out.append(UInt8(scalar.value))
            case 0x10000...:
                let v = scalar.value - 0x10000
                escape(0xd800 + (v >> 10), to: &out)
                escape(0xdc00 + (v & 0x3ff), to: &out)
            default: escape(scalar.value, to: &out)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func escape(_ unit: UInt32, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out += Array("\\u".utf8)
        for shift in stride(from: 12, through: 0, by: -4) { out.append(hex[Int((unit >> UInt32(shift)) & 0xf)]) }
    }

    /// A NUL anywhere in a string: C would read a path or name only up to
    /// it while the configuration records the whole.
    var containsNUL: Bool {
        switch self {
        case .string(let text): text.utf8.contains(0)
        case .array(let values): values.contains(where: \.containsNUL)
        case .object(let fields): fields.contains { $0.key.utf8.contains(0) || $0.value.containsNUL }
        default: false
        }
    }

    /// Absent, null, false, zero, empty: what a serialized default looks like.
    var isDefaultLike: Bool {
        switch self {
        case .null: true
        case .bool(let value): !value
        case .integer(let value): value == 0
        case .number(let value): value == 0
        case .string(let value): value.isEmpty
        case .array(let value): value.isEmpty
        case .object(let value): value.values.allSatisfy(\.isDefaultLike)
        }
    }

    /// The value as the command line writes it: on/off, numbers, text;
    /// lists in brackets. nil for null (the key is left out).
    var optionText: String? {
        switch self {
        case .null: return nil
        case .bool(let value): return value ? "on" : "off"
        case .integer(let value): return String(value)
        case .number(let value): return String(value)
        case .string(let value): return value
        case .array(let values): return "[" + values.compactMap(\.optionText).joined(separator: ",") + "]"
        case .object: return "{…}"
        }
    }
}
