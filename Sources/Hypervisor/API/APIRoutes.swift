/// What the API thread asks of the VMM thread: a request read, routed and
/// validated, so the VMM thread only acts on it.
public enum APIRequest: Sendable, Equatable {
    case vmmPing
    case vmmShutdown
    case vmCreate(VMConfig)
    case vmBoot
    case vmInfo
    case vmShutdown
    case vmReboot
    case vmDelete
    case vmPause
    case vmResume
    case vmPowerButton
    case vmCounters
    case vmAddDisk(DiskConfig)
    /// The taps' descriptors came with the request (SCM_RIGHTS) and are the
    /// VMM thread's to keep or close.
    case vmAddNet(NetConfig)
    case vmAddDevice(DeviceConfig)
    case vmAddVsock(VsockConfig)
    case vmAddFs(FsConfig)
    case vmRemoveDevice(id: String)
    case vmResize(vcpus: Int?, ramBytes: UInt64?)
    /// `destination_url`, as given.
    case vmSnapshot(String)
    case vmRestore(RestoreConfig)
    case vmSendMigration(SendMigrationConfig)
    case vmReceiveMigration(ReceiveMigrationConfig)

    /// The id of the device an add names, if it has one.
    var deviceID: String? {
        switch self {
        case .vmAddDisk(let disk): disk.id
        case .vmAddNet(let net): net.id
        case .vmAddDevice(let device): device.id
        case .vmAddVsock(let vsock): vsock.id
        case .vmAddFs(let share): share.id
        default: nil
        }
    }

    /// Descriptors the request carries, which whoever drops it must close.
    var descriptors: [Int32] {
        switch self {
        case .vmAddNet(let net): return net.fds
        case .vmRestore(let restore): return restore.netFDs.flatMap(\.fds)
        default: return []
        }
    }
}

/// Cloud Hypervisor's endpoints under `/api/v1` (its OpenAPI description,
/// `vmm/src/api/openapi/cloud-hypervisor.yaml`): which method each takes
/// and what its body becomes.
public enum APIRoutes {
    public static let root = "/api/v1/"

    /// Endpoints that exist in Cloud Hypervisor and are not built here yet.
    static let unbuilt: [String: String] = [
        "vm.add-pmem": "PUT", "vm.add-generic-vhost-user": "PUT",
        "vm.add-vdpa": "PUT", "vm.add-user-device": "PUT", "vm.resize-disk": "PUT", "vm.resize-zone": "PUT",
        "vm.coredump": "PUT",
        "vm.nmi": "PUT",
    ]

    static let methods: [String: String] = [
        "vmm.ping": "GET", "vmm.shutdown": "PUT", "vm.create": "PUT", "vm.boot": "PUT", "vm.info": "GET",
        "vm.shutdown": "PUT", "vm.reboot": "PUT", "vm.delete": "PUT", "vm.pause": "PUT", "vm.resume": "PUT",
        "vm.power-button": "PUT", "vm.add-disk": "PUT", "vm.add-net": "PUT", "vm.add-device": "PUT", "vm.add-vsock": "PUT", "vm.add-fs": "PUT",
        "vm.remove-device": "PUT", "vm.resize": "PUT", "vm.counters": "GET", "vm.snapshot": "PUT", "vm.restore": "PUT",
        "vm.send-migration": "PUT", "vm.receive-migration": "PUT",
    ]

    /// The request for the VMM thread, or the answer when the API thread
    /// can give it alone (an error). `base`: the command line's settings a
    /// `vm.create` keeps (seccomp, user, logging). `fds`: descriptors sent
    /// with the request; only `vm.add-net` takes them.
    public static func route(_ request: HTTPRequest, base: VMConfig, fds: [Int32] = []) -> Result<APIRequest, HTTPResponse> {
        guard request.path.hasPrefix(root) else {
            return .failure(.error(404, "\(request.path): not an API path (endpoints are under \(root))"))
        }
        let endpoint = String(request.path.dropFirst(root.count))
        if let method = unbuilt[endpoint] {
            guard request.method == method else { return .failure(wrongMethod(endpoint, method)) }
            return .failure(.error(400, "\(endpoint) is not supported yet"))
        }
        guard let method = methods[endpoint] else {
            return .failure(.error(404, "\(endpoint): unknown endpoint"))
        }
        guard request.method == method else { return .failure(wrongMethod(endpoint, method)) }
        switch endpoint {
        case "vmm.ping": return .success(.vmmPing)
        case "vmm.shutdown": return .success(.vmmShutdown)
        case "vm.create":
            guard !request.body.isEmpty else { return .failure(.error(400, "vm.create: the body must be a VmConfig")) }
            do {
                return .success(.vmCreate(try VmConfigJSON.config(from: request.body, base: base)))
            } catch {
                return .failure(.error(400, "\(error)"))
            }
        case "vm.boot": return .success(.vmBoot)
        case "vm.info": return .success(.vmInfo)
        case "vm.shutdown": return .success(.vmShutdown)
        case "vm.reboot": return .success(.vmReboot)
        case "vm.delete": return .success(.vmDelete)
        case "vm.pause": return .success(.vmPause)
        case "vm.resume": return .success(.vmResume)
        case "vm.power-button": return .success(.vmPowerButton)
        case "vm.counters": return .success(.vmCounters)
        default: return device(endpoint, request.body, fds: fds)
        }
    }

    /// The hot-add and resize bodies, through the command line's parsers.
    private static func device(_ endpoint: String, _ body: [UInt8], fds: [Int32]) -> Result<APIRequest, HTTPResponse> {
        do {
            let fields = try VmConfigJSON.object(body, endpoint)
            switch endpoint {
            case "vm.add-disk": return .success(.vmAddDisk(try VmConfigJSON.diskConfig(fields)))
            case "vm.add-net": return .success(.vmAddNet(try VmConfigJSON.netConfig(fields, fds: fds)))
            case "vm.add-device": return .success(.vmAddDevice(try VmConfigJSON.deviceConfig(fields)))
            case "vm.add-vsock": return .success(.vmAddVsock(try VmConfigJSON.vsockConfig(fields)))
            case "vm.add-fs": return .success(.vmAddFs(try VmConfigJSON.fsConfig(fields)))
            case "vm.snapshot":
                guard case .string(let url)? = fields["destination_url"], !url.isEmpty else {
                    return .failure(.error(400, "vm.snapshot: the body must name the destination: {\"destination_url\": \"file:///path\"}"))
                }
                return .success(.vmSnapshot(url))
            case "vm.restore":
                return .success(.vmRestore(try VmConfigJSON.restoreConfig(fields, fds: fds)))
            case "vm.send-migration":
                return .success(.vmSendMigration(try SendMigrationConfig(parsing: VmConfigJSON.optionText(fields, known: SendMigrationConfig.known))))
            case "vm.receive-migration":
                return .success(.vmReceiveMigration(try ReceiveMigrationConfig(parsing: VmConfigJSON.optionText(fields, known: ReceiveMigrationConfig.known))))
            case "vm.remove-device":
                guard case .string(let id)? = fields["id"], !id.isEmpty else {
                    return .failure(.error(400, "vm.remove-device: the body must name the device: {\"id\": \"…\"}"))
                }
                return .success(.vmRemoveDevice(id: id))
            default:
                // No balloon exists to resize: refused rather than answered 204 for nothing done.
                if let balloon = fields["desired_balloon"], balloon != .null {
                    return .failure(.error(400, "vm.resize desired_balloon (the balloon device) is not supported yet"))
                }
                return .success(.vmResize(vcpus: try VmConfigJSON.count(fields["desired_vcpus"], "desired_vcpus"),
                                          ramBytes: try VmConfigJSON.count(fields["desired_ram"], "desired_ram").map(UInt64.init)))
            }
        } catch {
            return .failure(.error(400, "\(error)"))
        }
    }

    private static func wrongMethod(_ endpoint: String, _ method: String) -> HTTPResponse {
        .error(405, "\(endpoint) takes \(method)")
    }
}
