/* Panics as Linux does with panic=-1: checks that pvpanic offers the
 * "panicked" event, reports it, then asks for the reset that follows. The
 * VMM must end with the panic, not reboot. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $0x505, %dx
    inb %dx, %al
    test $1, %al
    jz 1f
    mov $msg, %esi
    call puts
    mov $1, %al
    mov $0x505, %dx
    outb %al, %dx
    mov $0x600, %dx                 /* ACPI reset, as emergency_restart() */
    outb %al, %dx
    ret
1:  mov $missing, %esi
    call puts
    ret

    .section .rodata
msg:     .asciz "Kernel panic - not syncing: test\n"
missing: .asciz "no pvpanic device\n"
