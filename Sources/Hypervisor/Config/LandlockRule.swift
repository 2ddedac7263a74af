/// `--landlock-rules path=…,access=r|w|rw`: a path the confined VMM may
/// still open (for what arrives later, such as hotplug), Cloud Hypervisor's syntax.
public struct LandlockRule: Sendable, Equatable {
    public var path: String
    public var read: Bool
    public var write: Bool

    public init(path: String, read: Bool, write: Bool) {
        self.path = path
        self.read = read
        self.write = write
    }

    public init(parsing text: String) throws(ConfigError) {
        let list = try OptionList(text, option: "--landlock-rules", known: ["path", "access"])
        let path = try list.required("path")
        let access = try list.required("access")
        guard ["r", "w", "rw"].contains(access) else {
            throw .invalidValue(option: "--landlock-rules", key: "access", value: access, reason: "expected r, w or rw")
        }
        self.init(path: path, read: access.contains("r"), write: access.contains("w"))
    }
}
