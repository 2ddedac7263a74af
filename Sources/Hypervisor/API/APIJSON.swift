/// JSON for API clients (`ch-remote`, tests, benchmarks), in the shapes
/// Cloud Hypervisor's API takes.
public enum APIJSON {
    public static func encode(_ value: [String: String]) -> [UInt8] { JSONValue.object(value.mapValues { .string($0) }).serialized }

    /// An error body: Cloud Hypervisor's list of messages.
    public static func decodeStrings(_ body: [UInt8]) throws -> [String] {
        try JSON.decode([String].self, from: body)
    }

    /// `path=/a.raw,readonly=on,num_queues=2` → `{"path":"/a.raw","readonly":true,"num_queues":2}`.
    public static func object(fromOptions text: String, option: String) throws(ConfigError) -> [UInt8] {
        var fields: [String: JSONValue] = [:]
        for item in OptionList.split(text) where !item.isEmpty {
            guard let eq = item.firstIndex(of: "=") else {
                throw .invalidValue(option: option, key: nil, value: String(item), reason: "expected key=value")
            }
            let key = String(item[..<eq])
            let value = String(item[item.index(after: eq)...])
            fields[key] = jsonValue(value)
        }
        return JSONValue.object(fields).serialized
    }

    private static func jsonValue(_ text: String) -> JSONValue {
        switch text {
        case "on", "true": return .bool(true)
        case "off", "false": return .bool(false)
        default:
            if let number = Int64(text) { return .integer(number) }
            if text.hasPrefix("[") && text.hasSuffix("]") {
                let items = OptionList.split(String(text.dropFirst().dropLast())).filter { !$0.isEmpty }
                return .array(items.map { jsonValue(String($0.trimmingSpaces)) })
            }
            return .string(text)
        }
    }

    /// ch-remote's `resize --cpus N --memory SIZE --balloon SIZE`.
    public static func resize(_ arguments: [String]) throws(ConfigError) -> [UInt8] {
        var fields: [String: JSONValue] = [:]
        var index = 0
        while index < arguments.count {
            let flag = arguments[index]
            guard index + 1 < arguments.count else { throw .missing(option: "resize", what: "\(flag) needs a value") }
            let value = arguments[index + 1]
            switch flag {
            case "--cpus":
                guard let count = Int64(value), count > 0 else {
                    throw .invalidValue(option: "resize", key: "--cpus", value: value, reason: "expected a number of vCPUs")
                }
                fields["desired_vcpus"] = .integer(count)
            case "--memory", "--balloon":
                do {
                    let bytes = try ByteSize.parse(value)
                    fields[flag == "--memory" ? "desired_ram" : "desired_balloon"] = .integer(Int64(bytes))
                } catch {
                    throw .invalidValue(option: "resize", key: flag, value: value, reason: error.reason)
                }
            default:
                throw .invalidValue(option: "resize", key: nil, value: flag, reason: "expected --cpus, --memory or --balloon")
            }
            index += 2
        }
        guard !fields.isEmpty else { throw .missing(option: "resize", what: "give --cpus, --memory or --balloon") }
        return JSONValue.object(fields).serialized
    }
}
