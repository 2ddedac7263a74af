import ArgumentParser
import Hypervisor

#if canImport(Glibc)
import Glibc
#endif

/// Cloud Hypervisor's `ch-remote`: one API request per run, with its
/// subcommand names and the command line's `key=value` syntax.
@main
struct ChRemote: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ch-remote",
        abstract: "Remotely control a cloud-hypervisor VMM.",
        discussion: "Subcommands: \(Subcommand.all.keys.sorted().joined(separator: ", ")).",
        version: "ch-remote v\(Version.string)"
    )

    @Option(name: .customLong("api-socket"), help: ArgumentHelp("HTTP API socket path (UNIX domain socket).", valueName: "path"))
    var apiSocket: String

    @Argument(help: "What to do: info, ping, boot, pause, resume, shutdown, shutdown-vmm, create <path|->, …")
    var subcommand: String

    @Argument(parsing: .captureForPassthrough, help: "The subcommand's arguments.")
    var arguments: [String] = []

    func run() throws {
        switch perform() {
        case .success(let output): if let output { print(output) }
        case .failure(let error): Self.fail(error.description)
        }
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
