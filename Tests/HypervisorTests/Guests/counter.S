/* Counts in RAM and in a register, printing "n=<count in hex> r=<the
 * register's>" after every stretch of busy work, for ever: a restored
 * snapshot goes on from where it was saved, not from 1. */
    .code32
    .text
    .globl guest_main
guest_main:
    xor %edi, %edi
1:  mov $0x100000, %ecx
2:  loop 2b
    incl count
    inc %edi
    mov $n, %esi
    call puts
    mov count, %eax
    call puthex
    mov $r, %esi
    call puts
    mov %edi, %eax
    call puthex
    mov $'\n', %al
    call putc
    jmp 1b

    .section .rodata
n: .asciz "n="
r: .asciz " r="

    .bss
    .p2align 2
count: .long 0

    .section .note.GNU-stack, "", @progbits
