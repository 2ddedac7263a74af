/* Answers memory hotplug as a guest's ACPI would, without ACPI: reads each
 * slot's event byte (port 0xa110 + N), and for a slot that gained RAM says
 * its _STA (status byte, 0xa100 + N) and the range its _CRS would give
 * (base and size, two dwords each, at 0xa000 + 16 * N). */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $ready, %esi
    call puts
1:  xor %ebx, %ebx
2:  lea 0xa110(%ebx), %edx
    in %dx, %al
    test $1, %al
    jz 3f
    call report
3:  inc %ebx
    cmp $16, %ebx
    jb 2b
    jmp 1b

/* "memory slot N inserted sta=0x0f base=0x… size=0x…" for slot %ebx. */
report:
    mov $slot, %esi
    call puts
    mov %bl, %al
    add $'0', %al
    cmp $'9', %al
    jbe 1f
    add $7, %al
1:  call putc
    mov $inserted, %esi
    call puts
    lea 0xa100(%ebx), %edx
    in %dx, %al
    movzbl %al, %eax
    call hex8
    mov %ebx, %edi
    shl $4, %edi
    add $0xa000, %edi
    mov $base, %esi
    call puts
    call qword
    add $8, %edi
    mov $size, %esi
    call puts
    call qword
    mov $'\n', %al
    call putc
    ret

/* The dword pair at ports %edi+4 (high) and %edi (low), in hex. */
qword:
    lea 4(%edi), %edx
    in %dx, %eax
    call hex32
    mov %edi, %edx
    in %dx, %eax
    call hex32
    ret

hex32:
    push %eax
    shr $16, %eax
    call hex16
    pop %eax
hex16:
    push %eax
    shr $8, %eax
    call hex8
    pop %eax
hex8:
    push %eax
    shr $4, %eax
    call hex4
    pop %eax
hex4:
    push %eax
    and $0xf, %al
    add $'0', %al
    cmp $'9', %al
    jbe 1f
    add $('a' - '9' - 1), %al
1:  call putc
    pop %eax
    ret

    .section .rodata
ready: .asciz "memory hotplug guest ready\n"
slot: .asciz "memory slot "
inserted: .asciz " inserted sta=0x"
base: .asciz " base=0x"
size: .asciz " size=0x"

    .section .note.GNU-stack, "", @progbits
