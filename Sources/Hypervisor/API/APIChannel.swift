import CVMMCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Hands one request at a time from the API thread to the VMM thread,
/// which alone changes the VM, and its answer back. The VMM thread learns
/// of a request from `requestFD` in its epoll set and never waits on the
/// API thread; the API thread waits for the answer, which is the VMM's
/// outcome, not HTTP: the API thread makes the response of it.
final class APIChannel: Sendable {
    private struct State {
        var request: APIRequest?
        var response: APIOutcome?
        var closed = false
    }

    private let state = Mutex(State())
    private let request: OwnedDescriptor
    private let response: OwnedDescriptor
    /// Readable when a request waits (VMM thread's epoll).
    var requestFD: Int32 { request.raw }
    /// Blocking: the API thread reads it for the answer.
    private var responseFD: Int32 { response.raw }

    init() throws(VMMError) {
        do {
            request = try OwnedDescriptor(eventfd: "the API", nonBlocking: true)
            response = try OwnedDescriptor(eventfd: "the API", nonBlocking: false)
        } catch {
            throw .system(error)
        }
    }

    /// API thread: the VMM thread's answer to `request`.
    func call(_ request: APIRequest) -> APIOutcome {
        let posted = state.withLock { state in
            guard !state.closed else { return false }
            state.request = request
            state.response = nil
            return true
        }
        guard posted else {
            request.descriptors.forEach { Glibc.close($0) }
            return Self.leaving
        }
        Self.signal(requestFD)
        var count: UInt64 = 0
        while read(responseFD, &count, 8) < 0 && errno == EINTR {}
        return state.withLock { $0.response.take() } ?? Self.leaving
    }

    /// VMM thread: the waiting request, if any.
    func take() -> APIRequest? {
        var count: UInt64 = 0
        _ = read(requestFD, &count, 8)
        return state.withLock { $0.request.take() }
    }

    /// VMM thread: answers the request it took.
    func respond(_ response: APIOutcome) {
        state.withLock { $0.response = response }
        Self.signal(responseFD)
    }

    /// VMM thread, on its way out: a request not taken yet is answered,
    /// and later ones are refused without waiting.
    func close() {
        let pending = state.withLock { state in
            state.closed = true
            return state.request.take()
        }
        if let pending {
            pending.descriptors.forEach { Glibc.close($0) }
            respond(Self.leaving)
        }
    }

    private static let leaving = APIOutcome.failure(APIFailure(.unavailable, "the VMM is shutting down"))

    private static func signal(_ fd: Int32) {
        var one: UInt64 = 1
        while write(fd, &one, 8) < 0 && errno == EINTR {}
    }
}
