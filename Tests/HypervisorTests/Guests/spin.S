/* Prints a line and spins with interrupts off: only the VMM can stop it. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $msg, %esi
    call puts
1:  pause
    jmp 1b

    .section .rodata
msg: .asciz "spinning\n"
