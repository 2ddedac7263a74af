// libFuzzer target: the whole command line, from argv to a validated
// configuration — the unbuilt-option pre-pass, ArgumentReader (options,
// values, repeats, the bare --rng) and every option's key=value parser. The input is argv with
// NUL between the arguments. Nothing is opened or launched.
@testable import cloud_hypervisor
import Hypervisor

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCommandLine(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let arguments = bytes.split(separator: 0, omittingEmptySubsequences: false)
        .map { String(decoding: $0, as: UTF8.self) }
    // --help and --version come back as text; nothing is printed here.
    if case .success(let command) = CloudHypervisor.parseCommandLine(arguments) {
        _ = try? command.vmConfig.validate()
    }
    return 0
}
