/* Reads COM1 until a newline, writes each byte back with a prefix line,
 * then powers off: the console works both ways. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $prompt, %esi
    call puts
1:  mov $0x3fd, %dx
    in %dx, %al
    test $0x01, %al            /* LSR data ready */
    jz 1b
    mov $0x3f8, %dx
    in %dx, %al
    call putc
    cmp $'\n', %al
    jne 1b
    ret

    .section .rodata
prompt: .asciz "echo> "
