// libFuzzer target: the API's request path, from the bytes a client sends
// to what the VMM thread is asked: HTTP/1.1 framing (pipelined requests
// on one connection), routing, and vm.create's VmConfig through every
// option parser to a validated configuration; plus the client's parser of
// answers. Nothing is opened or launched.
@testable import Hypervisor

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAPIRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var buffer = Array(UnsafeBufferPointer(start: data, count: size))
    let base = VMConfig()
    for _ in 0..<8 {
        guard case .complete(let request, let consumed) = HTTPRequest.parse(buffer) else { break }
        precondition(consumed > 0 && consumed <= buffer.count)
        buffer.removeFirst(consumed)
        if case .failure(let response) = APIRoutes.route(request, base: base) {
            _ = response.serialized()
        }
        _ = try? VmConfigJSON.config(from: request.body, base: base)
    }
    var answer = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? APIClient.parse(&answer)
    return 0
}
