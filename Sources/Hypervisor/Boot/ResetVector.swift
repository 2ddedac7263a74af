/// What a guest finds at the BIOS reset vector, F000:FFF0, where no
/// firmware lives on this machine. Linux on a hardware-reduced ACPI
/// machine restarts through EFI and then by jumping there in real mode
/// (it tries the ACPI reset register only with `reboot=acpi`), so without
/// code there a guest's `reboot` would spin in zeroed memory for ever.
/// This code does what the ACPI reset would: it writes the FADT's reset
/// value to the reset register, and the VMM reboots the guest.
enum ResetVector {
    static let address: UInt64 = 0xffff0

    /// 16-bit code; the 16 bytes up to 1 MiB hold it.
    static func code(resetPort: UInt16, resetValue: UInt8) -> [UInt8] {
        [0xb0, resetValue,                                       // mov $value, %al
         0xba, UInt8(resetPort & 0xff), UInt8(resetPort >> 8),   // mov $port, %dx
         0xee,                                                   // out %al, (%dx)
         0xf4,                                                   // hlt
         0xeb, 0xfd]                                             // jmp back to the hlt
    }
}
