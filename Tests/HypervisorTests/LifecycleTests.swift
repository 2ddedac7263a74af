import Testing

@testable import Hypervisor

@Suite("The VM lifecycle and its answers")
struct LifecycleTests {
    @Test("every transition is Cloud Hypervisor's valid_transition, less BreakPoint")
    func transitions() throws {
        // Cloud Hypervisor's vmm/src/vm.rs, row by row: from → the states it may go to.
        let allowed: [VMState: Set<VMState>] = [
            .created: [.running, .paused, .shutdown],
            .running: [.paused, .shutdown],
            .paused: [.running, .shutdown],
            .shutdown: [.running],
        ]
        for from in VMState.allCases {
            for to in VMState.allCases {
                let expected = allowed[from]?.contains(to) == true
                #expect(from.allows(to) == expected, "\(from) → \(to)")
                let result = Result { () throws(LifecycleError) in try from.transition(to: to) }
                if expected {
                    #expect(try result.get() == to)
                } else {
                    #expect(throws: LifecycleError(from: from, to: to)) { try result.get() }
                }
            }
        }
        #expect("\(LifecycleError(from: .paused, to: .paused))" == "the VM is Paused, it cannot become Paused")
        // A VM shut down is reported as Cloud Hypervisor reports one: created again.
        #expect(VMState.allCases.map(\.reported) == ["Created", "Running", "Paused", "Created"])
    }

    @Test("each outcome gets Cloud Hypervisor's status code, errors as its list of messages")
    func statusCodes() {
        let cases: [(APIFailure.Kind, Int)] = [
            (.noVM, 404), (.unknownDevice, 404), (.duplicate, 409), (.invalidConfig, 400), (.notSupported, 400),
            (.failed, 500), (.unavailable, 503),
        ]
        for (kind, status) in cases {
            let response = HTTPResponse(.failure(APIFailure(kind, "why \"it\" failed")))
            #expect(response.status == status, "\(kind)")
            #expect(response.body == Array("[\"why \\\"it\\\" failed\"]".utf8), "\(kind)")
        }
        #expect(HTTPResponse(.success(.done)) == .noContent)
        let body = HTTPResponse(.success(.body(.object(["id": .string("_disk0")]))))
        #expect(body.status == 200 && body.body == Array("{\"id\":\"_disk0\"}".utf8))
    }
}
