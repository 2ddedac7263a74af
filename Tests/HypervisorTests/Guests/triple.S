/* Faults with an empty IDT: #UD cannot be delivered, then #DF cannot, so
 * the CPU shuts down (a triple fault). ud2 rather than int3: PVM's
 * emulator fails on int3 instead of faulting. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $msg, %esi
    call puts
    lidt empty_idt
    ud2
    ret

    .section .rodata
    .p2align 3
empty_idt:
    .word 0
    .long 0
msg: .asciz "about to triple-fault\n"
