/* Port and MMIO accesses of each size to a test device (ports 0x3000-0x300f,
 * MMIO 0xd0000000), values read back reported on port 0x3010, then reads
 * from nowhere, which must be all ones. */
    .code32
    .text
    .globl guest_main
guest_main:
    /* Port writes of 1, 2 and 4 bytes, and a 4-byte rep outsb. */
    mov $0x3000, %dx
    mov $0x11, %al
    out %al, %dx
    mov $0x3002, %dx
    mov $0x2233, %ax
    out %ax, %dx
    mov $0x3004, %dx
    mov $0x44556677, %eax
    out %eax, %dx
    mov $0x3008, %dx
    mov $string, %esi
    mov $4, %ecx
    rep outsb
    /* Port reads, echoed to the report port. */
    mov $0x3000, %dx
    in %dx, %al
    movzbl %al, %eax
    call report
    mov $0x3002, %dx
    in %dx, %ax
    movzwl %ax, %eax
    call report
    mov $0x3004, %dx
    in %dx, %eax
    call report

    /* MMIO writes and reads of 1, 2 and 4 bytes. */
    movb $0x88, 0xd0000000
    movw $0x99aa, 0xd0000002
    movl $0xbbccddee, 0xd0000004
    movzbl 0xd0000000, %eax
    call report
    movzwl 0xd0000002, %eax
    call report
    mov 0xd0000004, %eax
    call report

    /* Nothing answers here: reads must be all ones, writes vanish. */
    mov $0x5000, %dx
    mov $0x12, %al
    out %al, %dx
    in %dx, %al
    cmp $0xff, %al
    jne 1f
    in %dx, %ax
    cmp $0xffff, %ax
    jne 1f
    in %dx, %eax
    cmp $0xffffffff, %eax
    jne 1f
    movl $0x12345678, 0xe0000000
    mov 0xe0000000, %eax
    cmp $0xffffffff, %eax
    jne 1f
    movzbl 0xe0000003, %eax
    cmp $0xff, %eax
    jne 1f
    mov $unassigned_ok, %esi
    call puts
    ret
1:  mov $unassigned_bad, %esi
    call puts
    ret

report:
    push %edx
    mov $0x3010, %dx
    out %eax, %dx
    pop %edx
    ret

    .section .rodata
string:         .ascii "PIO!"
unassigned_ok:  .asciz "unassigned reads: all ones\n"
unassigned_bad: .asciz "unassigned reads: WRONG\n"
