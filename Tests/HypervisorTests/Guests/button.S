/* Waits for the ACPI power button: polls the Generic Event Device's
 * register (port 0x6c0, bit 3) as the DSDT's _EVT reads it, then says so
 * and powers off. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $waiting, %esi
    call puts
1:  mov $0x6c0, %dx
    in %dx, %al
    test $0x08, %al
    jz 1b
    mov $pressed, %esi
    call puts
    ret

    .section .rodata
waiting: .asciz "waiting for the power button\n"
pressed: .asciz "power button pressed\n"

    .section .note.GNU-stack, "", @progbits
