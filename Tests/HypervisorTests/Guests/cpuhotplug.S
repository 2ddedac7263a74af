/* Answers CPU hotplug as a guest's ACPI would, without ACPI: reads each
 * vCPU's event byte (port 0xaf00 + 0x100 + N), says what arrived with its
 * _STA (status byte, 0xaf00 + N), and ejects what the VMM asks back (a 1
 * written to the status byte), then says what _STA reads after it. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $ready, %esi
    call puts
1:  mov $1, %ebx
2:  lea 0xb000(%ebx), %edx      /* 0xaf00 + 0x100 + N */
    in %dx, %al
    test $1, %al
    jz 3f
    mov $inserted, %esi
    call say
3:  test $2, %al
    jz 4f
    lea 0xaf00(%ebx), %edx
    mov $1, %al
    out %al, %dx
    mov $ejected, %esi
    call say
4:  inc %ebx
    cmp $4, %ebx
    jb 2b
    jmp 1b

/* say: "cpu N " then the string at %esi, then "sta=0x0F" or "sta=0x00" as
 * the status byte of vCPU %ebx reads now. */
say:
    push %eax
    push %esi
    mov $cpu, %esi
    call puts
    mov %bl, %al
    add $'0', %al
    call putc
    pop %esi
    call puts
    lea 0xaf00(%ebx), %edx
    in %dx, %al
    mov $sta_absent, %esi
    test %al, %al
    jz 1f
    mov $sta_present, %esi
1:  call puts
    pop %eax
    ret

    .section .rodata
ready: .asciz "cpu hotplug guest ready\n"
cpu: .asciz "cpu "
inserted: .asciz " inserted "
ejected: .asciz " ejected "
sta_present: .asciz "sta=0x0f\n"
sta_absent: .asciz "sta=0x00\n"

    .section .note.GNU-stack, "", @progbits
