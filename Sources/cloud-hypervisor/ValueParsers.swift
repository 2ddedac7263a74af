import Hypervisor

/// Lets the library's typed parsers reach ArgumentParser, whose message
/// then carries the library's text.
func library<T>(_ parser: @escaping @Sendable (String) throws(ConfigError) -> T) -> @Sendable (String) throws -> T {
    { text in try parser(text) }
}

func parseSeccomp(_ text: String) throws -> VMConfig.SeccompMode {
    guard let mode = VMConfig.SeccompMode(rawValue: text) else {
        throw ConfigError.invalidValue(option: "--seccomp", key: nil, value: text, reason: "expected true, false or log")
    }
    return mode
}

