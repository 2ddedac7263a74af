/* The benchmark's exit guest: 100000 port writes to an unclaimed port, each
 * a full exit to the VMM and back, then "ok" and power-off. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $100000, %ecx
    mov $0x3100, %dx
1:  out %al, %dx
    loop 1b
    mov $msg, %esi
    call puts
    ret

    .section .rodata
msg: .asciz "ok\n"
