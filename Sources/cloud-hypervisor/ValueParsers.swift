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


/// Cloud Hypervisor's docs write `--rng` with no value for the default
/// source; ArgumentParser options need one, so the bare flag gets it here.
func bareRngAsDefault(_ arguments: [String]) -> [String] {
    var result: [String] = []
    for (i, argument) in arguments.enumerated() {
        result.append(argument)
        if argument == "--rng", i + 1 == arguments.count || arguments[i + 1].hasPrefix("-") {
            result.append("src=\(RngConfig.defaultSource)")
        }
    }
    return result
}
