import Hypervisor

/// Lets the library's typed parsers reach ArgumentParser, whose message
/// then carries the library's text.
func library<T>(_ parser: @escaping @Sendable (String) throws(ConfigError) -> T) -> @Sendable (String) throws -> T {
    { text in try parser(text) }
}

func parseSeccomp(_ text: String) throws -> VMConfig.SeccompMode {
    guard let mode = VMConfig.SeccompMode(rawValue: text) else {
        throw ConfigError.invalidValue(option: "--seccomp", key: nil, value: text, reason: "expected true, false, log or errno")
    }
    return mode
}

/// `--debug-console`: Cloud Hypervisor's default, `off,iobase=0xe9`, is what
/// happens here anyway; a console on port 0xe9 is not built yet.
func parseDebugConsole(_ text: String) throws(ConfigError) -> Bool {
    let items = text.split(separator: ",").map(String.init)
    let keyed = items.map { $0.contains("=") ? $0 : "\($0)=" }.joined(separator: ",")
    let list = try OptionList(keyed, option: "--debug-console", known: ["off", "pty", "tty", "file", "iobase"])
    if let port = list["iobase"] {
        let digits = port.hasPrefix("0x") ? String(port.dropFirst(2)) : port
        guard UInt16(digits, radix: 16) != nil else {
            throw .invalidValue(option: "--debug-console", key: "iobase", value: port, reason: "expected an I/O port in hex, such as 0xe9")
        }
    }
    guard list.keys.contains("off"), list.keys.allSatisfy({ $0 == "off" || $0 == "iobase" }) else {
        throw .notSupported("--debug-console \(text)")
    }
    return false
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

/// Options Cloud Hypervisor takes once: given twice, the command line is
/// refused, as Cloud Hypervisor refuses it, instead of the last one winning.
let singleOptions = ["--kernel", "--initramfs", "--cmdline", "--cpus", "--memory", "--serial", "--console", "--rng", "--vsock",
                     "--seccomp", "--api-socket", "--log-file", "--user", "--group", "--debug-console"]

/// The first single option given more than once, in either spelling
/// (`--kernel PATH`, `--kernel=PATH`).
func repeatedSingleOption(_ arguments: [String]) -> String? {
    var seen = Set<String>()
    for argument in arguments {
        let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
        if singleOptions.contains(name), !seen.insert(name).inserted { return name }
    }
    return nil
}
