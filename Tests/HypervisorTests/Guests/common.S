/* Shared start-up and helpers for the tiny guests: a PVH note, a stack,
 * COM1 output, and power-off through the ACPI sleep register. */
    .code32
    .section .note.Xen, "a"
    .p2align 2
    .long 4, 4, 18          /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start

    .text
    .globl _start
_start:
    mov $stack_top, %esp
    mov %ebx, start_info
    call guest_main
    /* fall through */
    .globl poweroff
poweroff:
    mov $0x600, %dx
    mov $0x34, %al
    out %al, %dx
    .globl halt_forever
halt_forever:
    cli
1:  hlt
    jmp 1b

/* putc: %al to COM1 once the transmitter is empty. */
    .globl putc
putc:
    push %edx
    push %eax
1:  mov $0x3fd, %dx
    in %dx, %al
    test $0x20, %al
    jz 1b
    pop %eax
    mov $0x3f8, %dx
    out %al, %dx
    pop %edx
    ret

/* puts: the NUL-terminated string at %esi. */
    .globl puts
puts:
    push %eax
    push %esi
1:  lodsb
    test %al, %al
    jz 2f
    call putc
    jmp 1b
2:  pop %esi
    pop %eax
    ret

/* putn: %ecx bytes at %esi. */
    .globl putn
putn:
    push %eax
    push %ecx
    push %esi
    test %ecx, %ecx
    jz 2f
1:  lodsb
    call putc
    loop 1b
2:  pop %esi
    pop %ecx
    pop %eax
    ret

/* puthex: %eax as eight hex digits. */
    .globl puthex
puthex:
    push %ebx
    push %ecx
    mov %eax, %ebx
    mov $8, %ecx
3:  rol $4, %ebx
    mov %ebx, %eax
    and $0xf, %eax
    mov hexdigits(%eax), %al
    call putc
    loop 3b
    pop %ecx
    pop %ebx
    ret

    .section .rodata
hexdigits: .ascii "0123456789abcdef"

    .section .note.GNU-stack, "", @progbits

    .bss
    .p2align 4
    .space 4096
stack_top:
    .globl start_info
start_info:
    .long 0
