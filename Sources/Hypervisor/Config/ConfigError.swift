/// A configuration the VMM cannot run, described so that a user can fix it:
/// each message names the option and what to do.
public enum ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `key` is not one the option knows.
    case unknownKey(option: String, key: String, known: [String])
    /// A key given twice in one value.
    case duplicateKey(option: String, key: String)
    /// A required key or option is absent.
    case missing(option: String, what: String)
    /// A value that does not parse or is out of range.
    case invalidValue(option: String, key: String?, value: String, reason: String)
    /// Parsed, understood, and not implemented yet: refused rather than ignored.
    case notSupported(String)
    /// Options that contradict each other.
    case conflict(String)
    /// Well-formed, but what it names cannot be used as it is (a tap that
    /// cannot be created, a descriptor that is not a tap): why, and the fix.
    case unusable(option: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownKey(option, key, known):
            return "\(option): unknown key '\(key)' (known keys: \(known.joined(separator: ", ")))"
        case let .duplicateKey(option, key):
            return "\(option): key '\(key)' is given more than once"
        case let .missing(option, what):
            return "\(option): \(what)"
        case let .invalidValue(option, key, value, reason):
            let name = key.map { "\(option) \($0)" } ?? option
            return "\(name): invalid value '\(value)': \(reason)"
        case let .notSupported(what):
            return "\(what) is not supported yet"
        case let .conflict(what):
            return what
        case let .unusable(option, reason):
            return "\(option): \(reason)"
        }
    }
}
