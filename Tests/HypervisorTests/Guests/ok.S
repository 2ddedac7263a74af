/* The benchmark's lifecycle guest: prints "ok" and powers off. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $msg, %esi
    call puts
    ret

    .section .rodata
msg: .asciz "ok\n"
