/* Reports the boot MSRs the VMM sets: MTRRs enabled with write-back as
 * the default type, and fast strings on. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov $0x2ff, %ecx                /* IA32_MTRR_DEF_TYPE */
    rdmsr
    and $0xcff, %eax                /* E (bit 11), FE (10), type (7:0) */
    cmp $0x806, %eax
    jne 1f
    mov $mtrr_ok, %esi
    call puts
1:  mov $0x1a0, %ecx                /* IA32_MISC_ENABLE */
    rdmsr
    test $1, %eax
    jz 2f
    mov $fast_ok, %esi
    call puts
2:  ret

    .section .rodata
mtrr_ok: .asciz "MTRRs on, default write-back\n"
fast_ok: .asciz "fast strings on\n"
