/// Anything that stops a launch, in one line a user can act on.
public enum VMMError: Error, Sendable, CustomStringConvertible {
    case config(ConfigError)
    case boot(BootError)
    case system(SystemError)

    public var description: String {
        switch self {
        case let .config(error): return error.description
        case let .boot(error): return error.description
        case let .system(error): return error.description
        }
    }
}
