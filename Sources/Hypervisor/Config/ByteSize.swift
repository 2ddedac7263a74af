/// Sizes as Cloud Hypervisor writes them: bytes, or a number with a binary
/// K, M or G suffix (`512M` is 512 MiB).
public enum ByteSize {
    public struct ParseError: Error, Sendable, Equatable {
        public let reason: String
    }

    public static func parse(_ text: String) throws(ParseError) -> UInt64 {
        var digits = Substring(text)
        var shift: UInt64 = 0
        switch digits.last {
        case "K", "k": shift = 10
        case "M", "m": shift = 20
        case "G", "g": shift = 30
        default: break
        }
        if shift != 0 { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let number = UInt64(digits) else {
            throw ParseError(reason: "expected a size such as 512M, 2G or 65536 (bytes)")
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { throw ParseError(reason: "size is too large") }
        return bytes
    }

    /// `512M`-style text for messages.
    public static func describe(_ bytes: UInt64) -> String {
        for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] where bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return "\(bytes)"
    }
}
