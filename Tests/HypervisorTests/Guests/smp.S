/* Starts the other vCPUs with INIT-SIPI-SIPI through the in-kernel local
 * APIC. Each AP runs a real-mode trampoline at 0x8000 that counts itself
 * in at 0x7f00 and halts. The BSP waits for the number of APs given as
 * the first character of the command line, then prints how many came. */
    .code32
    .text
    .globl guest_main
guest_main:
    /* Copy the trampoline to 0x8000 (SIPI vector 0x08). */
    mov $ap_start, %esi
    mov $0x8000, %edi
    mov $(ap_end - ap_start), %ecx
    rep movsb
    movw $0, 0x7f00

    movl $0x1ff, 0xfee000f0          /* spurious vector register: APIC on */
    movl $0x000c4500, 0xfee00300     /* INIT to all but self */
    call delay
    movl $0x000c4608, 0xfee00300     /* SIPI, vector 0x08 */
    call delay
    movl $0x000c4608, 0xfee00300

    mov start_info, %ebx
    mov 24(%ebx), %esi               /* cmdline: first char = APs expected */
    movzbl (%esi), %ebx
    sub $'0', %ebx
    mov $400000000, %ecx
1:  movzwl 0x7f00, %eax
    cmp %ebx, %eax
    je 2f
    pause
    loop 1b
2:  mov $msg, %esi
    call puts
    movzwl 0x7f00, %eax
    add $'0', %al
    call putc
    mov $'\n', %al
    call putc
    ret

delay:
    push %ecx
    mov $100000, %ecx
1:  pause
    loop 1b
    pop %ecx
    ret

    .code16
ap_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lock incw 0x7f00
1:  hlt
    jmp 1b
ap_end:

    .section .rodata
msg: .asciz "APs started: "
