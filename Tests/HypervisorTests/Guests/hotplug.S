/* Answers PCI hotplug as a guest's acpiphp would, without ACPI: for each of
 * the first four segments, selects it (PSEG, port 0xae0c), reads which
 * slots gained a device (PCIU, 0xae00) and which the VMM wants back (PCID,
 * 0xae04), says so with the segment, and ejects each of the latter (PCEJ,
 * 0xae08: segment << 8 | slot). */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $ready, %esi
    call puts
scan:
    xor %ebx, %ebx              /* the segment */
segment:
    mov $0xae0c, %dx
    mov %ebx, %eax
    out %eax, %dx
    mov $0xae00, %dx
    in %dx, %eax
    test %eax, %eax
    jz 1f
    mov $arrived, %esi
    call say
1:  mov $0xae04, %dx
    in %dx, %eax
    mov %eax, %edi              /* slots asked back */
2:  test %edi, %edi
    jz 3f
    bsf %edi, %ecx
    btr %ecx, %edi
    mov %ebx, %eax
    shl $8, %eax
    or %ecx, %eax
    mov $0xae08, %dx
    out %eax, %dx
    mov $ejected, %esi
    call say
    jmp 2b
3:  inc %ebx
    cmp $4, %ebx
    jb segment
    jmp scan

/* say: the string at %esi, then " on segment N" and a newline. */
say:
    push %eax
    call puts
    mov $on, %esi
    call puts
    mov %bl, %al
    add $'0', %al
    call putc
    mov $'\n', %al
    call putc
    pop %eax
    ret

    .section .rodata
ready: .asciz "hotplug guest ready\n"
arrived: .asciz "slot arrived"
ejected: .asciz "slot ejected"
on: .asciz " on segment "

    .section .note.GNU-stack, "", @progbits
