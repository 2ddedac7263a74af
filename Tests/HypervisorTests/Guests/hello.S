/* Checks the PVH start info, then prints a greeting, the command line and
 * the first initramfs module's bytes, and powers off. */
    .code32
    .text
    .globl guest_main
guest_main:
    mov start_info, %ebx
    cmpl $0x336ec578, (%ebx)        /* hvm_start_info.magic */
    jne bad_magic
    mov $hello, %esi
    call puts
    mov $cmdline_label, %esi
    call puts
    mov 24(%ebx), %esi              /* cmdline_paddr */
    call puts
    mov $newline, %esi
    call puts
    cmpl $0, 12(%ebx)               /* nr_modules */
    je 1f
    mov 16(%ebx), %edi              /* modlist_paddr */
    mov $module_label, %esi
    call puts
    mov (%edi), %esi                /* modlist[0].paddr */
    mov 8(%edi), %ecx               /* modlist[0].size */
    call putn
1:  mov $memmap_label, %esi
    call puts
    mov 48(%ebx), %eax              /* memmap_entries */
    add $'0', %al
    call putc
    mov $newline, %esi
    call puts
    ret
bad_magic:
    mov $bad, %esi
    call puts
    ret

    .section .rodata
hello:          .asciz "Hello from a tiny PVH guest\n"
cmdline_label:  .asciz "cmdline: "
module_label:   .asciz "module: "
memmap_label:   .asciz "memmap entries: "
newline:        .asciz "\n"
bad:            .asciz "bad PVH start info magic\n"
