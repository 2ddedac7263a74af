/// What the VMM thread answers an API request with. It knows nothing of
/// HTTP: the API thread makes the response of it (`HTTPResponse(_:)`).
public enum APIAnswer: Sendable, Equatable {
    /// Done, nothing to say (204).
    case done
    /// Done, with this answer (200).
    case body(JSONValue)
}

public typealias APIOutcome = Result<APIAnswer, APIFailure>

/// Why the VMM thread refused or failed a request, in Cloud Hypervisor's
/// categories: each maps to the status code its API gives that error.
public struct APIFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No VM is created, or none has a configuration (`VmNotCreated`, `VmMissingConfig`).
        case noVM
        /// No device has the id (`NoDeviceToRemove`, `UnknownDeviceId`).
        case unknownDevice
        /// The id or the device path is taken (`IdentifierNotUnique`, `DuplicateDevicePath`).
        case duplicate
        /// The configuration does not validate (`ConfigValidation`).
        case invalidConfig
        /// A capability this VMM has not built yet.
        case notSupported
        /// The state does not allow it (`InvalidStateTransition`, `VmNotRunning`…), or the VMM failed.
        case failed
        /// The VMM thread is on its way out.
        case unavailable
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

extension HTTPResponse {
    /// The API edge: Cloud Hypervisor's status for each outcome
    /// (`api_error_status_code`): 404 when there is no VM or no such
    /// device, 409 for a taken id or path, 400 for a configuration that
    /// does not validate, 500 for the rest, its state transitions included.
    /// Not built yet is 400 and the VMM leaving 503, which it has no
    /// counterpart for.
    public init(_ outcome: APIOutcome) {
        switch outcome {
        case .success(.done): self = .noContent
        case .success(.body(let json)): self.init(status: 200, body: json.serialized)
        case .failure(let failure):
            let status = switch failure.kind {
            case .noVM, .unknownDevice: 404
            case .duplicate: 409
            case .invalidConfig, .notSupported: 400
            case .failed: 500
            case .unavailable: 503
            }
            self = .error(status, failure.message)
        }
    }
}
