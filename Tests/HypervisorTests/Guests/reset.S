/* Prints a line and asks for a reset through the ACPI reset value. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $msg, %esi
    call puts
    mov $0x600, %dx
    mov $1, %al
    out %al, %dx
    jmp halt_forever

    .section .rodata
msg: .asciz "booted\n"
