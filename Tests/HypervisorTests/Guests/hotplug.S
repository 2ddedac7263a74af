/* Answers PCI hotplug as a guest's acpiphp would, without ACPI: reads
 * which slots gained a device (PCIU, port 0xae00) and which the VMM wants
 * back (PCID, 0xae04), says so, and ejects the latter (B0EJ, 0xae08). */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $ready, %esi
    call puts
1:  mov $0xae00, %dx
    in %dx, %eax
    test %eax, %eax
    jz 2f
    mov $arrived, %esi
    call puts
2:  mov $0xae04, %dx
    in %dx, %eax
    test %eax, %eax
    jz 1b
    mov $0xae08, %dx
    out %eax, %dx
    mov $ejected, %esi
    call puts
    jmp 1b

    .section .rodata
ready: .asciz "hotplug guest ready\n"
arrived: .asciz "slot arrived\n"
ejected: .asciz "slot ejected\n"

    .section .note.GNU-stack, "", @progbits
