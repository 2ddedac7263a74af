/// JSON for API clients (`ch-remote`, tests, benchmarks), in the shapes
/// Cloud Hypervisor's API takes.
public enum APIJSON {
    public static func encode(_ value: [String: String]) -> [UInt8] { JSONValue.object(value.mapValues { .string($0) }).serialized }

    /// send-migration's body as Cloud Hypervisor's client sends it
    /// (its enums capitalized).
    public static func body(_ migration: SendMigrationConfig) -> [UInt8] {
        JSONValue.object([
            "destination_url": .string(migration.destination.description), "local": .bool(migration.local),
            "downtime_ms": .integer(Int64(migration.downtimeMs)), "timeout_s": .integer(Int64(migration.timeoutS)),
            "timeout_strategy": .string(migration.timeoutStrategy == .cancel ? "Cancel" : "Ignore"),
        ]).serialized
    }

    /// vm.restore's body as Cloud Hypervisor's client sends it: each
    /// net's descriptor count, the descriptors themselves beside it.
    public static func body(_ restore: RestoreConfig) -> [UInt8] {
        var fields: [String: JSONValue] = ["source_url": .string(restore.sourceURL), "prefault": .bool(restore.prefault)]
        if restore.resume { fields["resume"] = .bool(true) }
        if !restore.netFDs.isEmpty {
            fields["net_fds"] = .array(restore.netFDs.map { .object(["id": .string($0.id), "num_fds": .integer(Int64($0.fds.count))]) })
        }
        return JSONValue.object(fields).serialized
    }

    public static func body(_ migration: ReceiveMigrationConfig) -> [UInt8] {
        JSONValue.object(["receiver_url": .string(migration.receiver.description)]).serialized
    }

    /// An error body: Cloud Hypervisor's list of messages.
    public static func decodeStrings(_ body: [UInt8]) throws -> [String] {
        guard case .array(let values) = try JSONReader.parse(body) else { throw JSONReader.Error(offset: 0, reason: "not a list of messages") }
        return try values.map { value throws -> String in
            guard case .string(let text) = value else { throw JSONReader.Error(offset: 0, reason: "not a list of messages") }
            return text
        }
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

    /// What a ch-remote flag's value is: a count, or a size with K/M/G, or an id.
    public enum FlagValue: Sendable { case count, size, text }

    /// ch-remote's flag form, as Cloud Hypervisor's takes it:
    /// `resize --cpus N --memory SIZE --balloon SIZE`, `resize-disk --disk ID
    /// --size SIZE`, `resize-zone --id ID --size SIZE`. `flags` maps each
    /// flag to the body's field and its kind of value.
    public static func flags(_ arguments: [String], command: String,
                             _ flags: [String: (field: String, value: FlagValue)]) throws(ConfigError) -> [UInt8] {
        let names = flags.keys.sorted().joined(separator: ", ")
        var fields: [String: JSONValue] = [:]
        var index = 0
        while index < arguments.count {
            let flag = arguments[index]
            guard let (field, kind) = flags[flag] else {
                throw .invalidValue(option: command, key: nil, value: flag, reason: "expected \(names)")
            }
            guard index + 1 < arguments.count else { throw .missing(option: command, what: "\(flag) needs a value") }
            let value = arguments[index + 1]
            switch kind {
            case .count:
                guard let count = Int64(value), count > 0 else {
                    throw .invalidValue(option: command, key: flag, value: value, reason: "expected a number of vCPUs")
                }
                fields[field] = .integer(count)
            case .size:
                let bytes: UInt64
                do {
                    bytes = try ByteSize.parse(value)
                } catch {
                    throw .invalidValue(option: command, key: flag, value: value, reason: error.reason)
                }
                guard let size = Int64(exactly: bytes) else {
                    throw .invalidValue(option: command, key: flag, value: value, reason: "size is too large")
                }
                fields[field] = .integer(size)
            case .text:
                fields[field] = .string(value)
            }
            index += 2
        }
        guard !fields.isEmpty else { throw .missing(option: command, what: "give \(names)") }
        return JSONValue.object(fields).serialized
    }
}
