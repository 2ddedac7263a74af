/// A VM's lifecycle state, as Cloud Hypervisor names it in `vm.info`.
///
/// Every change of state goes through `transition(to:)`, whose table is
/// Cloud Hypervisor's `VmState::valid_transition` (less its debugger's
/// `BreakPoint`). `shutdown` is where a VM passes on its way out of
/// `running` or `paused`; as in Cloud Hypervisor, `vm.info` then says
/// `Created` again (the configuration stays and can boot anew).
public enum VMState: String, Sendable, CaseIterable {
    case created = "Created"
    case running = "Running"
    case paused = "Paused"
    case shutdown = "Shutdown"

    /// Whether a VM in this state may go to `next`.
    public func allows(_ next: VMState) -> Bool {
        switch (self, next) {
        case (.created, .running), (.created, .paused), (.created, .shutdown): true
        case (.running, .paused), (.running, .shutdown): true
        case (.paused, .running), (.paused, .shutdown): true
        case (.shutdown, .running): true
        default: false
        }
    }

    /// `next`, or the refusal that names both states.
    public func transition(to next: VMState) throws(LifecycleError) -> VMState {
        guard allows(next) else { throw LifecycleError(from: self, to: next) }
        return next
    }

    /// What `vm.info` reports.
    public var reported: String { self == .shutdown ? VMState.created.rawValue : rawValue }
}

/// A lifecycle request the VM's state does not allow (Cloud Hypervisor's
/// `InvalidStateTransition`).
public struct LifecycleError: Error, Sendable, Equatable, CustomStringConvertible {
    public let from: VMState
    public let to: VMState

    public var description: String {
        "the VM is \(from.rawValue), it cannot become \(to.rawValue)"
    }
}
