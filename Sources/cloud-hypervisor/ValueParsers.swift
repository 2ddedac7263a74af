import Hypervisor

func parseSeccomp(_ text: String) throws(ConfigError) -> VMConfig.SeccompMode {
    guard let mode = VMConfig.SeccompMode(rawValue: text) else {
        throw .invalidValue(option: "--seccomp", key: nil, value: text, reason: "expected true, false, log or errno")
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
