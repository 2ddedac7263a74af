import Hypervisor

extension CloudHypervisor {
    /// --help: what the command is, an example, every option with its
    /// syntax, and the options known but not built yet.
    static var help: String {
        let width = 28
        var text = """
            A KVM virtual machine monitor with Cloud Hypervisor's command line.

            Usage: cloud-hypervisor [options]

            Example: boot a kernel on COM1 with 4 vCPUs and 512M of RAM:
              cloud-hypervisor --kernel vmlinux --cmdline "console=ttyS0" \\
                --serial tty --console off --cpus boot=4 --memory size=512M

            Options:

            """
        func line(_ left: String, _ help: String) {
            let pad = left.count < width ? String(repeating: " ", count: width - left.count) : "\n" + String(repeating: " ", count: width + 2)
            text += "  \(left)\(pad)\(help)\n"
        }
        for option in options {
            switch option.kind {
            case .flag: line(option.name, option.help)
            case .list: line("\(option.name) <\(option.valueName)>...", option.help)
            case .optionalValue: line("\(option.name) [<\(option.valueName)>]", option.help)
            case .value: line("\(option.name) <\(option.valueName)>", option.help)
            }
        }
        line("-v", "More log output (repeat for more).")
        line("-h, --help", "Show this help.")
        line("-V, --version", "Show the version.")
        text += """

            Cloud Hypervisor's options that are not built yet are known and
            refused with "not supported yet": \(UnbuiltOption.all.map(\.name).joined(separator: " ")).

            """
        return text
    }
}
