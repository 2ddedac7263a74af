import Hypervisor

#if canImport(Glibc)
import Glibc
#endif

/// Cloud Hypervisor's `ch-remote`: one API request per run, with its
/// subcommand names and the command line's `key=value` syntax.
@main
struct ChRemote {
    let apiSocket: String
    let subcommand: String
    let arguments: [String]

    static let usage = """
        Remotely control a cloud-hypervisor VMM.

        Usage: ch-remote --api-socket <path> <subcommand> [<argument>...]

        Subcommands: \(Subcommand.all.keys.sorted().joined(separator: ", ")).

        """

    static func main() {
        switch parse(Array(CommandLine.arguments.dropFirst())) {
        case .success(let command):
            switch command.perform() {
            case .success(let output): if let output { print(output) }
            case .failure(let error): fail(error.description)
            }
        case .failure(.exit(let text)):
            print(text, terminator: "")
        case .failure(.refused(let message)):
            fail(message)
        }
    }

    enum ParseOutcome: Error {
        /// --help or --version: printed, exit 0.
        case exit(String)
        case refused(String)
    }

    /// `--api-socket PATH` (or `=PATH`) before the subcommand; everything
    /// after the subcommand is its own, options included (`resize --cpus 2`).
    static func parse(_ argv: [String]) -> Result<ChRemote, ParseOutcome> {
        var socket: String?
        var index = 0
        while index < argv.count, argv[index].hasPrefix("-") {
            let argument = argv[index]
            index += 1
            switch argument {
            case "-h", "--help": return .failure(.exit(usage))
            case "-V", "--version": return .failure(.exit("ch-remote v\(Version.string)\n"))
            case "--api-socket":
                guard index < argv.count else { return .failure(.refused("--api-socket: a value is required")) }
                socket = argv[index]
                index += 1
            case _ where argument.hasPrefix("--api-socket="):
                socket = String(argument.dropFirst("--api-socket=".count))
            default:
                return .failure(.refused("Unknown option '\(argument)' (ch-remote --help lists the options)"))
            }
        }
        guard let socket, !socket.isEmpty else {
            return .failure(.refused("--api-socket <path> is required: the VMM's API socket"))
        }
        guard index < argv.count else {
            return .failure(.refused("a subcommand is required (known: \(Subcommand.all.keys.sorted().joined(separator: ", ")))"))
        }
        return .success(ChRemote(apiSocket: socket, subcommand: argv[index], arguments: Array(argv[(index + 1)...])))
    }

    struct Refusal: Error, CustomStringConvertible { let description: String }

    /// What the VMM answered, or why there is no answer to print.
    func perform() -> Result<String?, Refusal> {
        guard let command = Subcommand.all[subcommand] else {
            return .failure(Refusal(description: "unknown subcommand '\(subcommand)' (known: \(Subcommand.all.keys.sorted().joined(separator: ", ")))"))
        }
        let body: [UInt8]?
        let fds: [Int32]
        do {
            body = try command.body(arguments)
            fds = try command.descriptors(arguments)
        } catch {
            return .failure(Refusal(description: "\(error)"))
        }
        let answer: APIClient.Answer
        do {
            answer = try APIClient(socketPath: apiSocket).request(command.method, command.endpoint, body: body, fds: fds)
        } catch {
            return .failure(Refusal(description: error.description))
        }
        // Cloud Hypervisor's client takes 200 and 204 for success, anything else for an error.
        guard answer.status == 200 || answer.status == 204 else {
            return .failure(Refusal(description: "the VMM answered \(answer.status): \(Self.message(answer.body))"))
        }
        return .success(answer.body.isEmpty ? nil : answer.text)
    }

    /// Cloud Hypervisor's error body is a JSON array of messages.
    static func message(_ body: [UInt8]) -> String {
        let text = String(decoding: body, as: UTF8.self)
        guard let list = try? APIJSON.decodeStrings(body) else { return text }
        return list.joined(separator: ": ")
    }

    static func fail(_ message: String) -> Never {
        let line = "ch-remote: error: \(message)\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        Glibc.exit(1)
    }
}
