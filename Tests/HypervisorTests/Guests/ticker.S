/* Prints a line after every stretch of busy work, for ever: output that
 * stops only while the VM is paused. */
    .code32
    .text
    .globl guest_main
guest_main:
1:  mov $0x100000, %ecx
2:  loop 2b
    mov $tick, %esi
    call puts
    jmp 1b

    .section .rodata
tick: .asciz "tick\n"

    .section .note.GNU-stack, "", @progbits
