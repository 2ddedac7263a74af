/// Any JSON value. The API reads a `VmConfig` as a tree of these and hands
/// each device's fields to the command line's own parser as `key=value`
/// text, so both front ends share one parser and one validator.
public indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(UInt64.self) {
            // Sizes above 2^63 are not sizes: kept as text so the parser names them.
            self = .string(String(value))
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
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
