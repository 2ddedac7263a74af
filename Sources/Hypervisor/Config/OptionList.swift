/// Cloud Hypervisor's option value syntax: `key=value,key=value`.
///
/// Commas inside `[...]` or double quotes do not split, so lists such as
/// `affinity=[0@[0,1]]` stay one value. Every option's parser goes through
/// here, so unknown and duplicate keys are reported the same way everywhere.
public struct OptionList: Sendable, Equatable {
    public let option: String
    private var values: [String: String]
    private var order: [String]

    /// Splits `text` and checks every key against `known`.
    public init(_ text: String, option: String, known: [String]) throws(ConfigError) {
        self.option = option
        values = [:]
        order = []
        for item in Self.split(text) where !item.isEmpty {
            guard let eq = item.firstIndex(of: "=") else {
                throw .invalidValue(option: option, key: nil, value: String(item),
                                    reason: "expected key=value (keys: \(known.joined(separator: ", ")))")
            }
            let key = String(item[..<eq])
            let value = Self.unquote(String(item[item.index(after: eq)...]))
            guard known.contains(key) else {
                throw .unknownKey(option: option, key: key, known: known)
            }
            guard values[key] == nil else { throw .duplicateKey(option: option, key: key) }
            values[key] = value
            order.append(key)
        }
    }

    /// The keys given, in the order given.
    public var keys: [String] { order }

    public subscript(key: String) -> String? { values[key] }

    /// A key's value, which must be present and non-empty.
    public func required(_ key: String) throws(ConfigError) -> String {
        guard let value = values[key], !value.isEmpty else {
            throw .missing(option: option, what: "\(key)=… is required")
        }
        return value
    }

    /// `on`/`off` (and `true`/`false`), as Cloud Hypervisor accepts them.
    public func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let value = values[key] else { return nil }
        switch value {
        case "on", "true": return true
        case "off", "false": return false
        default:
            throw .invalidValue(option: option, key: key, value: value, reason: "expected on or off")
        }
    }

    public func integer<T: FixedWidthInteger & Sendable>(_ key: String, in range: ClosedRange<T>) throws(ConfigError) -> T? {
        guard let value = values[key] else { return nil }
        guard let number = T(value), range.contains(number) else {
            throw .invalidValue(option: option, key: key, value: value,
                                reason: "expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// Cloud Hypervisor's integer lists: `[1,3]`, `[0-2]` (0, 1, 2), or a
    /// bare `2`; `[]` is empty.
    public func integerList(_ key: String) throws(ConfigError) -> [Int]? {
        guard let value = values[key] else { return nil }
        var body = Substring(value)
        if body.hasPrefix("[") && body.hasSuffix("]") { body = body.dropFirst().dropLast() }
        var result: [Int] = []
        for item in body.split(separator: ",", omittingEmptySubsequences: false) where !(body.isEmpty && item.isEmpty) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(bounds.count), let low = bounds.first ?? nil, let high = bounds.last ?? nil,
                  low >= 0, low <= high, high - low < 4096 else {
                throw .invalidValue(option: option, key: key, value: value, reason: "expected a list such as [0,2] or [0-3]")
            }
            result += Array(low...high)
        }
        return result
    }

    /// `pci_segment=N`: a segment the VM may have; whether it has it is
    /// `VMConfig.validate`'s to say.
    public func pciSegment() throws(ConfigError) -> Int {
        try integer("pci_segment", in: 0...(PlatformConfig.maxPCISegments - 1)) ?? 0
    }

    public func size(_ key: String) throws(ConfigError) -> UInt64? {
        guard let value = values[key] else { return nil }
        do {
            return try ByteSize.parse(value)
        } catch {
            throw .invalidValue(option: option, key: key, value: value, reason: error.reason)
        }
    }

    /// Refuses keys the VMM recognises but does not implement yet, unless
    /// they carry the value that means "what happens anyway".
    public func refuseUnsupported(_ keys: [String], unlessEqualTo defaults: [String: String] = [:]) throws(ConfigError) {
        for key in keys {
            if let value = values[key], defaults[key] != value {
                throw .notSupported("\(option) \(key)=\(value)")
            }
        }
    }

    static func split(_ text: String) -> [Substring] {
        var parts: [Substring] = []
        var depth = 0
        var quoted = false
        var start = text.startIndex
        for index in text.indices {
            switch text[index] {
            case "\"": quoted.toggle()
            case "[" where !quoted: depth += 1
            case "]" where !quoted: depth = max(0, depth - 1)
            case "," where !quoted && depth == 0:
                parts.append(text[start..<index])
                start = text.index(after: index)
            default: break
            }
        }
        parts.append(text[start...])
        return parts
    }

    private static func unquote(_ value: String) -> String {
        if value.count >= 2, value.first == "\"", value.last == "\"" {
            return String(value.dropFirst().dropLast())
        }
        return value
    }
}

extension Substring {
    /// Without leading and trailing blanks (spaces, tabs).
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
