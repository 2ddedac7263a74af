import Hypervisor

/// One option of the command line as Cloud Hypervisor's clap declares it:
/// its spelling, what follows it, and its line in --help.
struct OptionSpec: Sendable {
    enum Kind: Sendable {
        /// `--kernel PATH` or `--kernel=PATH`, once.
        case value
        /// `--disk A B …` (every word up to the next option), given once
        /// or several times.
        case list
        /// `--rng` alone or with a value: alone means `defaultValue`.
        case optionalValue(defaultValue: String)
        /// `--landlock`: no value, once.
        case flag
    }

    let name: String
    let kind: Kind
    let valueName: String
    let help: String

    init(_ name: String, _ kind: Kind, _ valueName: String, _ help: String) {
        self.name = name
        self.kind = kind
        self.valueName = valueName
        self.help = help
    }
}

/// argv split into options and their values, checked against the table:
/// unknown options, stray words, missing values and single options given
/// twice are refused here with one line each.
struct ArgumentReader {
    enum Outcome {
        case options(ArgumentReader)
        case help
        case version
    }

    private(set) var values: [String: [String]] = [:]
    /// How many times `-v` was given (`-v -v` or `-vv`).
    private(set) var verbosity = 0

    static func read(_ arguments: [String], _ specs: [OptionSpec]) throws(ConfigError) -> Outcome {
        var reader = ArgumentReader()
        var index = 0
        func takesValue(_ word: String) -> Bool { !word.hasPrefix("-") || word == "-" }
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "-h" || argument == "--help" { return .help }
            if argument == "-V" || argument == "--version" { return .version }
            guard argument.hasPrefix("--") else {
                if argument.hasPrefix("-"), argument.count > 1 {
                    // Short flags, clustered as -vv.
                    for flag in argument.dropFirst() {
                        switch flag {
                        case "v": reader.verbosity += 1
                        case "h": return .help
                        case "V": return .version
                        default: throw Self.unknown("-\(flag)")
                        }
                    }
                    continue
                }
                throw .conflict("Unexpected argument '\(argument)': a value goes after its option (--disk path=…)")
            }
            let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            let inline = parts.count == 2 ? String(parts[1]) : nil
            guard let spec = specs.first(where: { $0.name == name }) else { throw Self.unknown(name) }
            var given: [String] = []
            switch spec.kind {
            case .flag:
                if let inline { throw .invalidValue(option: name, key: nil, value: inline, reason: "\(name) takes no value") }
            case .value, .optionalValue:
                if let inline {
                    given = [inline]
                } else if index < arguments.count, takesValue(arguments[index]) {
                    given = [arguments[index]]
                    index += 1
                } else if case .optionalValue(let defaultValue) = spec.kind {
                    given = [defaultValue]
                } else {
                    throw .missing(option: name, what: "a value is required")
                }
            case .list:
                if let inline { given = [inline] }
                while index < arguments.count, takesValue(arguments[index]) {
                    given.append(arguments[index])
                    index += 1
                }
                guard !given.isEmpty else { throw .missing(option: name, what: "a value is required") }
            }
            if case .list = spec.kind {
                reader.values[name, default: []] += given
            } else {
                // Given twice, refused as Cloud Hypervisor refuses it, instead of the last one winning.
                guard reader.values[name] == nil else { throw .conflict("\(name) is given more than once; give it once") }
                reader.values[name] = given
            }
        }
        return .options(reader)
    }

    private static func unknown(_ name: String) -> ConfigError {
        .conflict("Unknown option '\(name)' (cloud-hypervisor --help lists the options)")
    }

    func has(_ name: String) -> Bool { values[name] != nil }

    func value(_ name: String) -> String? { values[name]?.first }

    func list(_ name: String) -> [String] { values[name] ?? [] }

    /// The option's value through the library's parser, or `absent`.
    func parse<T>(_ name: String, _ parser: (String) throws(ConfigError) -> T, or absent: T) throws(ConfigError) -> T {
        guard let text = value(name) else { return absent }
        return try parser(text)
    }

    func parseList<T>(_ name: String, _ parser: (String) throws(ConfigError) -> T) throws(ConfigError) -> [T] {
        var parsed: [T] = []
        for text in list(name) { parsed.append(try parser(text)) }
        return parsed
    }
}
